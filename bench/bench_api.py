"""``POST /v1/events`` under load, on loopback: one event per request and batches, side by side.

    python -m bench.bench_api [--single 3000] [--batches 40] [--batch-size 250] [--clients 4]

Starts its own Redis and PostgreSQL and one API process (``circuit-os serve``, one uvicorn
worker); a producer API key is created through the service layer. Each client thread keeps
one HTTP connection (httpx). An accepted event is validated, deduplicated by ingest later
and queued for it on Redis (``CIRCUIT_PUBLISH_MODE=worker``); no worker runs, so the figures
are the API's own. Prints events/s and per-request p50/p99 latency. Bounded: a fixed number
of requests, each with a 10 s timeout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _drive(url: str, key: str, bodies: list[list[dict[str, Any]]], clients: int, batch: bool) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    parts = [bodies[i::clients] for i in range(clients)]
    kind = "application/cloudevents-batch+json" if batch else "application/cloudevents+json"

    def client(mine: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(headers={"X-API-Key": key, "content-type": kind}, timeout=10) as http:
            for events in mine:
                payload = events if batch else events[0]
                start = time.perf_counter()
                r = http.post(f"{url}/v1/events", json=payload)
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    if r.status_code != 202:
                        errors.append(r.status_code)

    threads = [threading.Thread(target=client, args=(p,)) for p in parts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    events = sum(len(b) for b in bodies)
    return {
        "events": events,
        "requests": len(bodies),
        "events_s": events / elapsed,
        "p50_ms": _pct(latencies, 0.5),
        "p99_ms": _pct(latencies, 0.99),
        "mean_ms": statistics.fmean(latencies) * 1000,
        "errors": len(errors),
    }


def _event(i: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"bench-{uuid.uuid4()}",
        "type": "bench.api",
        "source": "bench",
        "data": {"i": i},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=3000, help="requests of one event")
    parser.add_argument("--batches", type=int, default=40, help="batch requests")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    from workers.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

    with EmbeddedRedis() as redis_url, EmbeddedPostgres() as pg_url:
        env = {
            **os.environ,
            "CIRCUIT_REDIS_URL": redis_url,
            "CIRCUIT_DATABASE_URL": pg_url,
            "CIRCUIT_API_RATE_PER_KEY": "100000",
            "CIRCUIT_API_RATE_PER_TENANT": "100000",
        }
        os.environ.update(env)
        from service import keys, runtime
        from service.access import local_admin
        from storage.migrate import upgrade

        upgrade(runtime().engine)
        key, _ = keys.create(runtime(), local_admin(), "bench", "producer", "bench")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env={**env, "CIRCUIT_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("bench: the API did not start")
                time.sleep(0.1)
            _drive(url, key, [[_event(i)] for i in range(200)], args.clients, batch=False)  # warm up
            single = _drive(url, key, [[_event(i)] for i in range(args.single)], args.clients, batch=False)
            batches = [[_event(i) for i in range(args.batch_size)] for _ in range(args.batches)]
            batch = _drive(url, key, batches, args.clients, batch=True)
        finally:
            server.terminate()
            server.wait(10)
    print(f"POST /v1/events, {args.clients} clients on loopback, one uvicorn process ({os.cpu_count()} cores)")
    print(f"{'mode':<24}{'events':>8}{'requests':>10}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in (("one event per request", single), (f"batches of {args.batch_size}", batch)):
        print(
            f"{name:<24}{r['events']:>8.0f}{r['requests']:>10.0f}{r['events_s']:>10.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8.0f}"
        )


if __name__ == "__main__":
    main()
