"""Circuits against plain Celery, side by side, on one Redis and one worker pool.

    python -m bench.bench_engine [--chains 500] [--chords 200] [--latency 200]

Starts its own Redis and PostgreSQL (the ledger is written to PostgreSQL, as in
production) and one worker (prefork, 2 processes) that runs both the circuits and
the plain tasks. Each pair is measured twice, alternating, and the better of each
is printed. Bounded: every wait gives up after 120 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 120.0


def _wait(check: Any, what: str) -> float:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"bench: gave up waiting for {what}")


def _all_exist(r: Any, keys: list[str]) -> bool:
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.exists(k)
    return all(pipe.execute())


def plain_chains(r: Any, n: int) -> float:
    from celery import chain

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    results = [chain(noop.s(i), noop.s(), noop.s(), noop.s(), noop.s()).apply_async() for i in range(n)]
    keys = [f"celery-task-meta-{res.id}" for res in results]
    return n / (_wait(lambda: _all_exist(r, keys), "plain chains") - t0)


def plain_chords(r: Any, n: int) -> float:
    from celery import chord

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    results = [chord([noop.s(j) for j in range(10)], noop.s()).apply_async() for _ in range(n)]
    keys = [f"celery-task-meta-{res.id}" for res in results]
    return n / (_wait(lambda: _all_exist(r, keys), "plain chords") - t0)


def circuit_runs(r: Any, engine: sa.Engine, event_type: str, circuit: str, n: int) -> tuple[float, float]:
    """(runs/s until every run ended, runs/s until the ledger in SQL shows them all)."""
    from storage.ledger import RunRow
    from workers.ingest import run_id_for
    from workers.publish import publish

    t0 = time.perf_counter()
    events = [publish(event_type, {"i": i}) for i in range(n)]
    run_ids = [run_id_for(e, circuit) for e in events]

    def ended() -> bool:
        pipe = r.pipeline(transaction=False)
        for rid in run_ids:
            pipe.hexists(f"circuit:done:{rid}", "__end__")
        return all(pipe.execute())

    def recorded() -> bool:
        with engine.connect() as conn:
            q = sa.select(sa.func.count()).where(RunRow.id.in_(run_ids), RunRow.status == "succeeded")
            return conn.execute(q).scalar() == n

    done = _wait(ended, f"{circuit} runs")
    in_sql = _wait(recorded, f"{circuit} ledger")
    return n / (done - t0), n / (in_sql - t0)


def latency(r: Any, engine: sa.Engine, n: int) -> tuple[list[float], list[float]]:
    """Milliseconds from publish to the first step starting (circuits) / apply_async to start (plain)."""
    from bench.plain_tasks import started
    from storage.ledger import StepRow
    from workers.ingest import run_id_for
    from workers.publish import publish

    sent: dict[str, float] = {}
    for _ in range(n):
        t = time.time()
        sent[run_id_for(publish("bench.latency", {}), "bench-latency")] = t
        time.sleep(0.01)

    def recorded() -> bool:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(StepRow.run_id.in_(sent))).scalar() == n

    _wait(recorded, "latency runs")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(StepRow.run_id, StepRow.started_at).where(StepRow.run_id.in_(sent))).all()
    ours = sorted((row.started_at.timestamp() - sent[row.run_id]) * 1000 for row in rows)
    plain = []
    for _ in range(n):
        plain.append(started.apply_async((time.time(),)).get(timeout=30) * 1000)
        time.sleep(0.01)
    return ours, sorted(plain)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=500)
    parser.add_argument("--chords", type=int, default=200)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from workers.embedded import EmbeddedPostgres, EmbeddedRedis

    with EmbeddedRedis() as redis_url, EmbeddedPostgres() as pg_url:
        os.environ.update({
            "CIRCUIT_REDIS_URL": redis_url, "CIRCUIT_DATABASE_URL": pg_url,
            "CIRCUIT_CIRCUITS": str(ROOT / "bench" / "circuits"), "CIRCUIT_ACTION_MODULES": "circuits.builtin",
        })
        from storage.migrate import upgrade
        from workers.app import app
        from workers.runtime import runtime

        rt = runtime()
        upgrade(rt.engine)
        log = open(ROOT / ".circuit-os-bench-worker.log", "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-c", str(args.concurrency), "-I",
             "bench.plain_tasks", "--loglevel", "WARNING", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait(lambda: bool(app.control.ping(timeout=0.5)), "the worker")
            r = rt.redis
            plain_chains(r, 50)
            circuit_runs(r, rt.engine, "bench.sequence", "bench-sequence", 50)
            rows: dict[str, list[float]] = {k: [] for k in ("pc", "cs", "cs_sql", "pd", "cp", "cp_sql")}
            for _ in range(args.rounds):
                rows["pc"].append(plain_chains(r, args.chains))
                a, b = circuit_runs(r, rt.engine, "bench.sequence", "bench-sequence", args.chains)
                rows["cs"].append(a)
                rows["cs_sql"].append(b)
                rows["pd"].append(plain_chords(r, args.chords))
                a, b = circuit_runs(r, rt.engine, "bench.parallel", "bench-parallel", args.chords)
                rows["cp"].append(a)
                rows["cp_sql"].append(b)
            ours, plain = latency(r, rt.engine, args.latency)
        finally:
            worker.terminate()
            worker.wait(30)
            log.close()
            rt.close()

    best = {k: max(v) for k, v in rows.items()}
    print(f"\nCircuit OS vs plain Celery: one Redis, one worker (prefork -c {args.concurrency}), "
          f"ledger to PostgreSQL; best of {args.rounds} rounds")
    print(f"{'workload':<38}{'plain Celery':>14}{'circuit':>12}{'ratio':>8}{'in SQL ledger':>15}")
    print(f"{'5-step sequence (per s)':<38}{best['pc']:>14.1f}{best['cs']:>12.1f}{best['cs'] / best['pc']:>7.2f}x"
          f"{best['cs_sql']:>15.1f}")
    print(f"{'10-way parallel + join (per s)':<38}{best['pd']:>14.1f}{best['cp']:>12.1f}"
          f"{best['cp'] / best['pd']:>7.2f}x{best['cp_sql']:>15.1f}")
    print(f"{'publish to first step p50 (ms)':<38}{statistics.median(plain):>14.2f}{statistics.median(ours):>12.2f}")
    print(f"{'publish to first step p99 (ms)':<38}{pct(plain, 0.99):>14.2f}{pct(ours, 0.99):>12.2f}")
    print("(plain latency: apply_async to task start; circuit latency: publish() through the ingest task to the "
          "first step, one extra hop)")


if __name__ == "__main__":
    main()
