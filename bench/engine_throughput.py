"""Throughput and latency: circuits against plain Celery canvas, alternating within each round."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench.engine_common import (
    DEFAULT_MODE,
    note,
    pct,
    release_pending,
    results_exist,
    run_ends,
    spread,
    table,
    wait,
    wait_ledger,
)

SEQUENCE = ("bench.sequence", "bench-sequence")
PARALLEL = ("bench.parallel", "bench-parallel")
PARALLEL50 = ("bench.parallel50", "bench-parallel50")
FOREACH = ("bench.foreach", "bench-foreach")


def plain_chains(r: Any, n: int) -> float:
    """Runs/s of ``n`` plain chains of 5 noop tasks, all sent at once."""
    from celery import chain

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    results = [chain(noop.s(i), noop.s(), noop.s(), noop.s(), noop.s()).apply_async() for i in range(n)]
    return n / (wait(results_exist(r, [res.id for res in results]), "plain chains") - t0)


def plain_chords(r: Any, n: int, width: int = 10) -> float:
    """Runs/s of ``n`` plain chords of ``width`` noop tasks + a noop callback, all sent at once."""
    from celery import chord

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    results = [chord([noop.s(j) for j in range(width)], noop.s()).apply_async() for _ in range(n)]
    rate = n / (wait(results_exist(r, [res.id for res in results]), f"plain chords of {width}") - t0)
    release_pending()
    return rate


def plain_group(r: Any, items: int) -> float:
    """Items/s of one plain group of ``items`` noop tasks (no limit on how many wait at once)."""
    from celery import group

    from bench.plain_tasks import noop

    t0 = time.perf_counter()
    res = group(noop.s(i) for i in range(items)).apply_async()
    rate = items / (wait(results_exist(r, [c.id for c in res.results]), "a plain group") - t0)
    release_pending()
    return rate


def circuit_runs(
    r: Any,
    engine: sa.Engine,
    event_type: str,
    circuit: str,
    n: int,
    mode: str = DEFAULT_MODE,
    data: dict[str, Any] | None = None,
) -> tuple[float, float]:
    """(runs/s until every run ended, runs/s until the SQL ledger shows them all succeeded)."""
    from workers.ingest import run_id_for
    from workers.publish import publish
    from workers.runtime import runtime

    runtime().settings.publish_mode = mode  # type: ignore[assignment]
    t0 = time.perf_counter()
    run_ids = [run_id_for(publish(event_type, {"i": i, **(data or {})}), circuit) for i in range(n)]
    done = wait(run_ends(r, run_ids), f"{circuit} runs ({mode} mode)")
    in_sql = wait_ledger(engine, run_ids, f"{circuit} runs")
    release_pending()  # direct mode: the producer applied the runs' chords
    return n / (done - t0), n / (in_sql - t0)


def circuit_foreach(r: Any, engine: sa.Engine, items: int) -> float:
    """Items/s of one run of bench-foreach over ``items`` items."""
    return items * circuit_runs(r, engine, *FOREACH, 1, data={"items": list(range(items))})[0]


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

    wait(recorded, "latency runs in the ledger", interval=0.1)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(StepRow.run_id, StepRow.started_at).where(StepRow.run_id.in_(sent))).all()
    ours = sorted((row.started_at.timestamp() - sent[row.run_id]) * 1000 for row in rows)
    plain: list[float] = []
    for _ in range(n if plain_too else 0):
        plain.append(started.apply_async((time.time(),)).get(timeout=30) * 1000)
        time.sleep(0.01)
    return ours, sorted(plain)


# ------------------------------------------------------------------------------------------ sections


@dataclass
class Throughput:
    rounds: int
    chains: int
    chords: int
    rows: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in ("pc", "cs", "cs_sql", "csd", "pd", "cp", "cp_sql", "cpd")}
    )

    def report(self) -> list[str]:
        lines = [
            f"Throughput, runs/s: {self.chains} sequence runs and {self.chords} parallel runs per measurement, "
            f"{self.rounds} round(s). In each round plain, circuit and direct run back to back (plain first in "
            "odd rounds, last in even ones).",
        ]
        rows = []
        for label, plain_key, ours_key in (
            ("5-step sequence", "pc", "cs"),
            ("10-way parallel + join", "pd", "cp"),
        ):
            for side, key in (
                ("plain Celery", plain_key),
                ("circuit", ours_key),
                ("circuit, direct", ours_key + "d"),
                ("circuit, in SQL ledger", ours_key + "_sql"),
            ):
                best, med, lo, hi = spread(self.rows[key])
                rows.append(
                    [label if side == "plain Celery" else "", side, f"{med:.1f}", f"{best:.1f}", f"{lo:.1f}-{hi:.1f}"]
                )
        lines += table(["workload", "side", "median", "best", "min-max"], rows, left=2)
        lines.append("")
        lines.append("Ratio circuit / plain, per round (each round's circuit figure over the same round's plain one):")
        rows = []
        for label, plain_key, ours_key in (
            ("5-step sequence vs chain of 5", "pc", "cs"),
            ("10-way parallel vs chord of 10 + 1", "pd", "cp"),
        ):
            for side, key in (("circuit", ours_key), ("circuit, direct", ours_key + "d")):
                ratios = [o / p for o, p in zip(self.rows[key], self.rows[plain_key], strict=True)]
                best, med, lo, hi = spread(ratios)
                rows.append(
                    [label if side == "circuit" else "", side, f"{best:.2f}x", f"{med:.2f}x", f"{lo:.2f}-{hi:.2f}x"]
                )
        lines += table(["workload", "side", "best", "median", "min-max"], rows, left=2)
        return lines


def run_throughput(r: Any, engine: sa.Engine, rounds: int, chains: int, chords: int) -> Throughput:
    out = Throughput(rounds, chains, chords)
    for i in range(rounds):
        note(f"throughput round {i + 1}/{rounds}")
        plain_first = i % 2 == 0

        def sequence() -> None:
            a, b = circuit_runs(r, engine, *SEQUENCE, chains)
            out.rows["cs"].append(a)
            out.rows["cs_sql"].append(b)
            out.rows["csd"].append(circuit_runs(r, engine, *SEQUENCE, chains, "direct")[0])

        def parallel() -> None:
            a, b = circuit_runs(r, engine, *PARALLEL, chords)
            out.rows["cp"].append(a)
            out.rows["cp_sql"].append(b)
            out.rows["cpd"].append(circuit_runs(r, engine, *PARALLEL, chords, "direct")[0])

        if plain_first:
            out.rows["pc"].append(plain_chains(r, chains))
            sequence()
            out.rows["pd"].append(plain_chords(r, chords))
            parallel()
        else:
            sequence()
            out.rows["pc"].append(plain_chains(r, chains))
            parallel()
            out.rows["pd"].append(plain_chords(r, chords))
    return out


@dataclass
class Latency:
    n: int
    plain: list[float]
    ours: list[float]
    direct: list[float]

    def report(self) -> list[str]:
        rows = [
            [f"p{int(q * 100)}", f"{pct(self.plain, q):.2f}", f"{pct(self.ours, q):.2f}", f"{pct(self.direct, q):.2f}"]
            for q in (0.5, 0.95, 0.99)
        ]
        return [
            f"Latency to the first step, ms ({self.n} single-step runs, 10 ms apart; "
            "plain = apply_async to task start):",
            *table(["percentile", "plain Celery", "circuit", "circuit, direct"], rows),
        ]


def run_latency(r: Any, engine: sa.Engine, n: int) -> Latency:
    note("latency")
    ours, plain = latency(r, engine, n, DEFAULT_MODE)
    direct, _ = latency(r, engine, n, "direct", plain_too=False)
    return Latency(n, plain, ours, direct)
