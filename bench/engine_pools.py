"""Worker pools for I/O-bound steps: prefork against threads, circuits and plain Celery alike.

Steps that wait on the network (notify, llm) hold a prefork process each while they wait; a
thread pool holds a thread. Three steps of 50 ms each (``core.sleep``; plain: ``bench.sleep``)
per run, on a fresh worker per pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench.engine_common import Workers, note, results_exist, run_ends, table, wait

IO = ("bench.io", "bench-io")
#: (label, pool, concurrency) of the workers compared.
POOLS = (("prefork -c 2", "prefork", 2), ("threads -c 16", "threads", 16))


def plain_io(r: Any, n: int) -> float:
    """Runs/s of ``n`` plain chains of three 50 ms ``bench.sleep`` tasks."""
    from celery import chain

    from bench.plain_tasks import sleep

    t0 = time.perf_counter()
    results = [chain(sleep.s(i), sleep.s(), sleep.s()).apply_async() for i in range(n)]
    return n / (wait(results_exist(r, [res.id for res in results]), "plain I/O chains") - t0)


def circuit_io(r: Any, n: int) -> float:
    from workers.ingest import run_id_for
    from workers.publish import publish

    t0 = time.perf_counter()
    run_ids = [run_id_for(publish(IO[0], {"i": i}), IO[1]) for i in range(n)]
    return n / (wait(run_ends(r, run_ids), "I/O runs") - t0)


@dataclass
class Pools:
    runs: int
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # pool -> side -> runs/s

    def report(self) -> list[str]:
        rows = [
            [label, f"{f['plain']:.1f}", f"{f['circuit']:.1f}", f"{f['circuit'] / f['plain']:.2f}x"]
            for label, f in self.figures.items()
        ]
        return [
            f"Worker pools for I/O-bound steps, runs/s: {self.runs} runs of three 50 ms steps, one fresh worker per "
            "pool (deploy/ runs the llm pool on threads):",
            *table(["pool", "plain Celery", "circuit", "ratio"], rows),
        ]


def run_pools(r: Any, engine: sa.Engine, workers: Workers, runs: int) -> Pools:
    del engine  # the ledger is not waited for here: this compares pools, not recording
    out = Pools(runs)
    for label, pool, concurrency in POOLS:
        note(f"pools: {label}")
        workers.start("pools", concurrency, pool=pool)
        try:
            workers.ready()
            circuit_io(r, min(runs, 20))  # warm up
            out.figures[label] = {"plain": plain_io(r, runs), "circuit": circuit_io(r, runs)}
        finally:
            workers.stop()
    return out
