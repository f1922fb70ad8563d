"""Memory: RSS of a fresh worker after each batch of five-step runs, circuits against plain chains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench.engine_common import (
    DEFAULT_MODE,
    Workers,
    note,
    results_exist,
    run_ends,
    table,
    tree_rss_kib,
    wait,
    wait_ledger,
)
from bench.engine_throughput import SEQUENCE


@dataclass
class MemorySide:
    side: str
    batch: int
    samples: list[dict[str, int]] = field(default_factory=list)  # after each batch


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


@dataclass
class Memory:
    total: int
    batch: int
    concurrency: int
    sides: list[MemorySide] = field(default_factory=list)

    def report(self) -> list[str]:
        n = self.total // self.batch
        lines = [
            f"Memory: VmRSS of a fresh worker (prefork -c {self.concurrency}) while it runs {self.total} five-step "
            f"runs, published {self.batch} at a time (each batch done before the next); MiB. "
            "'pool' sums the pool children, 'helpers' the processes the worker starts beside its pool "
            "(ledger writer, event stream reader).",
        ]
        rows = []
        for s in self.sides:
            if len(s.samples) < 2:
                continue
            a, b = s.samples[1], s.samples[-1]
            for part in ("main", "pool", "helpers", "total"):
                label = f"{part} ({b[part + '_n']})" if part in ("pool", "helpers") else part
                rows.append(
                    [
                        s.side if part == "main" else "",
                        label,
                        _mib(a[part]),
                        _mib(b[part]),
                        f"{(b[part] - a[part]) / 1024:+.1f}",
                    ]
                )
        lines += table(
            ["side", "process", f"after {2 * self.batch}", f"after {n * self.batch}", "growth"], rows, left=2
        )
        for s in self.sides:
            totals = " ".join(_mib(x["total"]) for x in s.samples)
            lines.append(f"  {s.side}, total after each batch: {totals}")
        return lines


def _measure(
    workers: Workers, name: str, concurrency: int, side: str, total: int, batch: int, run_batch: Callable[[int], None]
) -> MemorySide:
    out = MemorySide(side, batch)
    workers.start(name, concurrency)
    try:
        workers.ready()
        pid = workers.pids()[name]
        for done in range(batch, total + 1, batch):
            run_batch(batch)
            out.samples.append(tree_rss_kib(pid))
            note(f"memory, {side}: {done}/{total}, RSS {out.samples[-1]['total'] / 1024:.1f} MiB")
    finally:
        workers.stop()
    return out


def run_memory(r: Any, engine: sa.Engine, workers: Workers, total: int, batch: int, concurrency: int) -> Memory:
    from celery import chain

    from bench.plain_tasks import noop
    from workers.ingest import run_id_for
    from workers.publish import publish
    from workers.runtime import runtime

    all_runs: list[str] = []

    def circuits(n: int) -> None:
        runtime().settings.publish_mode = DEFAULT_MODE  # type: ignore[assignment]
        ids = [run_id_for(publish(SEQUENCE[0], {"i": i}), SEQUENCE[1]) for i in range(n)]
        wait(run_ends(r, ids), f"a batch of {n} runs")
        all_runs.extend(ids)

    def chains(n: int) -> None:
        ids = [chain(noop.s(i), noop.s(), noop.s(), noop.s(), noop.s()).apply_async().id for i in range(n)]
        wait(results_exist(r, ids), f"a batch of {n} plain chains")

    out = Memory(total, batch, concurrency)

    def circuit_side(n: int) -> None:
        circuits(n)
        if len(all_runs) == total:  # the ledger catches up before its writer is stopped with the worker
            wait_ledger(engine, all_runs, f"{total} memory runs")

    out.sides.append(_measure(workers, "mem-circuit", concurrency, "circuit", total, batch, circuit_side))
    out.sides.append(_measure(workers, "mem-plain", concurrency, "plain Celery", total, batch, chains))
    return out
