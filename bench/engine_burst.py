"""Bursts: many runs published at once, timed one by one; and a hot run published behind an import.

Times are wall-clock (``time.time()``) on one machine: the producer notes when it published, the
engine's SQL ledger holds when each run ended (``circuit_runs.ended_at``), and a plain chain's last
task (``bench.stamp``) returns when it ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bench.engine_common import (
    DEFAULT_MODE,
    ended_at,
    note,
    pct,
    results,
    results_exist,
    run_ends,
    table,
    wait,
    wait_ledger,
)
from bench.engine_throughput import SEQUENCE

HOT = ("bench.hot", "bench-hot")
#: Broker priorities of the plain side, as the engine sends a run's first step (workers.progress):
#: kombu's Redis transport serves 0 first; bench-sequence (trigger priority 5) starts at 6, bench-hot
#: (priority 9) at 3, and every later step goes at 0 (Celery's default), on both sides.
PLAIN_BULK_PRIORITY = 6
PLAIN_HOT_PRIORITY = 3


def _publish_runs(event_type: str, circuit: str, n: int, mode: str) -> dict[str, float]:
    """Publish ``n`` events; run id -> wall-clock time just before its event was published."""
    from workers.ingest import run_id_for
    from workers.publish import publish
    from workers.runtime import runtime

    runtime().settings.publish_mode = mode  # type: ignore[assignment]
    sent: dict[str, float] = {}
    for i in range(n):
        t = time.time()
        sent[run_id_for(publish(event_type, {"i": i}), circuit)] = t
    return sent


def _send_chains(n: int, priority: int | None = None) -> dict[str, float]:
    """Apply ``n`` chains of 4 noop + 1 stamp; last task id -> wall-clock time just before apply_async."""
    from celery import chain

    from bench.plain_tasks import noop, stamp

    options = {} if priority is None else {"priority": priority}
    sent: dict[str, float] = {}
    for i in range(n):
        t = time.time()
        sent[chain(noop.s(i), noop.s(), noop.s(), noop.s(), stamp.s()).apply_async(**options).id] = t
    return sent


def _latencies(sent: dict[str, float], ends: dict[str, float]) -> list[float]:
    return sorted(ends[k] - sent[k] for k in sent)


# ------------------------------------------------------------------------------------------ burst


@dataclass
class Burst:
    n: int
    plain: list[float]
    ours: list[float]
    direct: list[float]

    def report(self) -> list[str]:
        def cells(values: list[float]) -> list[str]:
            return [f"{pct(values, q) * 1000:.0f}" for q in (0.5, 0.95, 0.99)] + [f"{values[-1] * 1000:.0f}"]

        return [
            f"Burst: {self.n} five-step runs published at once; ms from publish (apply_async) to the run's end "
            "(plain: the chain's last task):",
            *table(
                ["side", "p50", "p95", "p99", "max"],
                [
                    ["plain Celery (chain of 5)", *cells(self.plain)],
                    ["circuit", *cells(self.ours)],
                    ["circuit, direct", *cells(self.direct)],
                ],
            ),
        ]


def circuit_burst(r: Any, engine: sa.Engine, n: int, mode: str) -> list[float]:
    sent = _publish_runs(*SEQUENCE, n, mode)
    ids = list(sent)
    wait(run_ends(r, ids), f"the burst of {n} runs ({mode} mode)")
    wait_ledger(engine, ids, "the burst")
    return _latencies(sent, ended_at(engine, ids))


def plain_burst(r: Any, n: int) -> list[float]:
    sent = _send_chains(n)
    ids = list(sent)
    wait(results_exist(r, ids), f"the burst of {n} plain chains")
    return _latencies(sent, results(r, ids))


def run_burst(r: Any, engine: sa.Engine, n: int) -> Burst:
    note(f"burst of {n}")
    plain = plain_burst(r, n)
    ours = circuit_burst(r, engine, n, DEFAULT_MODE)
    direct = circuit_burst(r, engine, n, "direct")
    return Burst(n, plain, ours, direct)


# ------------------------------------------------------------------------------------------ hot lead


@dataclass
class HotResult:
    side: str
    hot_s: float  # hot publish -> hot end
    ahead_of: int  # bulk runs that ended after the hot one
    bulk: int
    drain_s: float  # first bulk publish -> last bulk end
    publish_s: float  # time to publish the bulk


@dataclass
class Hot:
    imported: int
    rows: list[HotResult]

    def report(self) -> list[str]:
        rows = [
            [
                h.side,
                f"{h.hot_s:.3f}",
                "yes" if h.hot_s < 1.0 else "NO",
                f"{h.ahead_of}/{h.bulk}",
                f"{h.publish_s:.2f}",
                f"{h.drain_s:.2f}",
            ]
            for h in self.rows
        ]
        return [
            f"Hot lead behind an import: {self.imported} five-step runs published, then at once one more with a "
            "higher priority (circuit: bench-hot, trigger priority 9 vs 5; plain: a chain applied with broker "
            f"priority {PLAIN_HOT_PRIORITY}, the import's chains with {PLAIN_BULK_PRIORITY}):",
            *table(
                [
                    "side",
                    "hot publish -> end, s",
                    "< 1 s",
                    "import runs ending after it",
                    "import published in, s",
                    "import done in, s",
                ],
                rows,
            ),
        ]


def circuit_hot(r: Any, engine: sa.Engine, n: int, mode: str) -> HotResult:
    from workers.ingest import run_id_for
    from workers.publish import publish

    bulk = _publish_runs(*SEQUENCE, n, mode)
    t_hot = time.time()
    hot_id = run_id_for(publish(HOT[0], {"hot": True}), HOT[1])
    published = time.time()
    wait(run_ends(r, [hot_id]), f"the hot run ({mode} mode)")
    ids = list(bulk)
    wait(run_ends(r, ids), f"the {n} import runs ({mode} mode)")
    wait_ledger(engine, [hot_id, *ids], "the import and the hot run")
    ends = ended_at(engine, [hot_id, *ids])
    hot_end = ends.pop(hot_id)
    return HotResult(
        side="circuit" if mode == DEFAULT_MODE else f"circuit, {mode}",
        hot_s=hot_end - t_hot,
        ahead_of=sum(1 for end in ends.values() if end > hot_end),
        bulk=n,
        drain_s=max(ends.values()) - min(bulk.values()),
        publish_s=published - min(bulk.values()),
    )


def plain_hot(r: Any, n: int) -> HotResult:
    bulk = _send_chains(n, PLAIN_BULK_PRIORITY)
    hot = _send_chains(1, PLAIN_HOT_PRIORITY)
    published = time.time()
    wait(results_exist(r, list(hot)), "the hot plain chain")
    wait(results_exist(r, list(bulk)), f"the {n} import chains")
    hot_id, t_hot = next(iter(hot.items()))
    hot_end = float(results(r, [hot_id])[hot_id])
    ends = results(r, list(bulk))
    return HotResult(
        side="plain Celery",
        hot_s=hot_end - t_hot,
        ahead_of=sum(1 for end in ends.values() if end > hot_end),
        bulk=n,
        drain_s=max(ends.values()) - min(bulk.values()),
        publish_s=published - min(bulk.values()),
    )


def run_hot(r: Any, engine: sa.Engine, n: int) -> Hot:
    note(f"hot lead behind an import of {n}")
    return Hot(n, [plain_hot(r, n), circuit_hot(r, engine, n, DEFAULT_MODE), circuit_hot(r, engine, n, "direct")])
