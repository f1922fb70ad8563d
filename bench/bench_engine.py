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
        time.sleep(0.02)
    raise SystemExit(f"bench: gave up waiting for {what}")


class _Progress:
    """Checks keys in order from the first one not yet there, so waiting costs the worker little CPU."""

    def __init__(self, r: Any, keys: list[str], field: str | None = None) -> None:
        self.r, self.keys, self.field, self.pos = r, keys, field, 0

    def __call__(self) -> bool:
        while self.pos < len(self.keys):
            batch = self.keys[self.pos : self.pos + 50]
            pipe = self.r.pipeline(transaction=False)
            for k in batch:
                pipe.hexists(k, self.field) if self.field else pipe.exists(k)
            found = pipe.execute()
            done = next((i for i, ok in enumerate(found) if not ok), len(batch))
            self.pos += done
            if done < len(batch):
                return False
        return True


def _all_exist(r: Any, keys: list[str]) -> Any:
    return _Progress(r, keys)


def plain_chains(r: Any, n: int) -> float:
    from celery import chain

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    results = [chain(noop.s(i), noop.s(), noop.s(), noop.s(), noop.s()).apply_async() for i in range(n)]
    keys = [f"celery-task-meta-{res.id}" for res in results]
    return n / (_wait(_all_exist(r, keys), "plain chains") - t0)


def plain_chords(r: Any, n: int) -> float:
    from celery import chord

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    results = [chord([noop.s(j) for j in range(10)], noop.s()).apply_async() for _ in range(n)]
    keys = [f"celery-task-meta-{res.id}" for res in results]
    return n / (_wait(_all_exist(r, keys), "plain chords") - t0)


def circuit_runs(
    r: Any, engine: sa.Engine, event_type: str, circuit: str, n: int, mode: str = "worker"
) -> tuple[float, float]:
    """(runs/s until every run ended, runs/s until the ledger in SQL shows them all)."""
    from storage.ledger import RunRow
    from workers.ingest import run_id_for
    from workers.publish import publish
    from workers.runtime import runtime

    runtime().settings.publish_mode = mode  # type: ignore[assignment]
    t0 = time.perf_counter()
    events = [publish(event_type, {"i": i}) for i in range(n)]
    run_ids = [run_id_for(e, circuit) for e in events]

    ended = _Progress(r, [f"circuit:done:{rid}" for rid in run_ids], "__end__")

    def recorded() -> bool:
        with engine.connect() as conn:
            q = sa.select(sa.func.count()).where(RunRow.id.in_(run_ids), RunRow.status == "succeeded")
            return conn.execute(q).scalar() == n

    done = _wait(ended, f"{circuit} runs")
    in_sql = _wait(recorded, f"{circuit} ledger")
    return n / (done - t0), n / (in_sql - t0)


def latency(r: Any, engine: sa.Engine, n: int, mode: str, plain_too: bool = True) -> tuple[list[float], list[float]]:
    """Milliseconds from publish to the first step starting (circuits) / apply_async to start (plain)."""
    from bench.plain_tasks import started
    from storage.ledger import StepRow
    from workers.ingest import run_id_for
    from workers.publish import publish
    from workers.runtime import runtime

    runtime().settings.publish_mode = mode  # type: ignore[assignment]
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
    plain: list[float] = []
    for _ in range(n if plain_too else 0):
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

    from workers.embedded import CeleryProcess, EmbeddedPostgres, EmbeddedRedis

    with EmbeddedRedis() as redis_url, EmbeddedPostgres() as pg_url:
        os.environ.update(
            {
                "CIRCUIT_REDIS_URL": redis_url,
                "CIRCUIT_DATABASE_URL": pg_url,
                "CIRCUIT_CIRCUITS": str(ROOT / "bench" / "circuits"),
                "CIRCUIT_ACTION_MODULES": "circuits.builtin",
            }
        )
        from storage.migrate import upgrade
        from workers.app import app
        from workers.runtime import runtime

        rt = runtime()
        upgrade(rt.engine)
        worker = CeleryProcess(
            [
                "worker",
                "-c",
                str(args.concurrency),
                "-I",
                "bench.plain_tasks",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            os.environ.copy(),
            ROOT / ".circuit-os" / "bench-worker.log",
            cwd=ROOT,
        ).start()
        try:
            worker.wait_ready(app)
            r = rt.redis
            plain_chains(r, 50)
            circuit_runs(r, rt.engine, "bench.sequence", "bench-sequence", 50)
            rows: dict[str, list[float]] = {k: [] for k in ("pc", "cs", "cs_sql", "csd", "pd", "cp", "cp_sql", "cpd")}
            for _ in range(args.rounds):
                rows["pc"].append(plain_chains(r, args.chains))
                a, b = circuit_runs(r, rt.engine, "bench.sequence", "bench-sequence", args.chains)
                rows["cs"].append(a)
                rows["cs_sql"].append(b)
                rows["csd"].append(
                    circuit_runs(r, rt.engine, "bench.sequence", "bench-sequence", args.chains, "direct")[0]
                )
                rows["pd"].append(plain_chords(r, args.chords))
                a, b = circuit_runs(r, rt.engine, "bench.parallel", "bench-parallel", args.chords)
                rows["cp"].append(a)
                rows["cp_sql"].append(b)
                rows["cpd"].append(
                    circuit_runs(r, rt.engine, "bench.parallel", "bench-parallel", args.chords, "direct")[0]
                )
            ours, plain = latency(r, rt.engine, args.latency, "worker")
            ours_direct, _ = latency(r, rt.engine, args.latency, "direct", plain_too=False)
        finally:
            worker.stop()
            rt.close()

    best = {k: max(v) for k, v in rows.items()}
    print(
        f"\nCircuit OS vs plain Celery: one Redis, one worker (prefork -c {args.concurrency}), "
        f"ledger to PostgreSQL; best of {args.rounds} rounds"
    )
    print(
        f"{'workload':<34}{'plain Celery':>13}{'circuit':>10}{'ratio':>8}{'direct':>10}{'ratio':>8}"
        f"{'in SQL ledger':>15}"
    )
    for label, plain_key, ours_key in (
        ("5-step sequence (runs/s)", "pc", "cs"),
        ("10-way parallel + join (runs/s)", "pd", "cp"),
    ):
        p, o, d = best[plain_key], best[ours_key], best[ours_key + "d"]
        print(f"{label:<34}{p:>13.1f}{o:>10.1f}{o / p:>7.2f}x{d:>10.1f}{d / p:>7.2f}x{best[ours_key + '_sql']:>15.1f}")
    for label, q in (("publish to first step p50 (ms)", 0.5), ("publish to first step p99 (ms)", 0.99)):
        print(f"{label:<34}{pct(plain, q):>13.2f}{pct(ours, q):>10.2f}{'':>8}{pct(ours_direct, q):>10.2f}")
    print(
        "circuit = publish() to the event stream, read beside the worker (default); "
        "direct = CIRCUIT_PUBLISH_MODE=direct, the producer enqueues the run itself.\n"
        "plain latency = apply_async to task start. 'in SQL ledger' = runs/s until "
        "PostgreSQL shows every run succeeded (default mode)."
    )


if __name__ == "__main__":
    main()
