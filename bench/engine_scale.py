"""Scale: the same workloads on one worker and on two, plus wide fan-outs (foreach of 1,000, parallel of 50)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench.engine_common import note, table
from bench.engine_throughput import (
    PARALLEL,
    PARALLEL50,
    SEQUENCE,
    circuit_foreach,
    circuit_runs,
    plain_chains,
    plain_chords,
    plain_group,
)


@dataclass
class Sizes:
    chains: int
    chords: int
    foreach_items: int
    wide: int  # runs of the 50-way parallel


#: (key, label, unit)
WORKLOADS = (
    ("sequence", "5-step sequence vs chain of 5", "runs/s"),
    ("parallel", "10-way parallel vs chord of 10 + 1", "runs/s"),
    ("foreach", "foreach vs group (items)", "items/s"),
    ("parallel50", "50-way parallel vs chord of 50 + 1", "runs/s"),
)


def measure(r: Any, engine: sa.Engine, sizes: Sizes, rounds: int, label: str) -> dict[str, dict[str, float]]:
    """Best of ``rounds`` for each workload and side: {workload: {"plain": x, "circuit": y}}."""
    runs: dict[str, dict[str, list[float]]] = {k: {"plain": [], "circuit": []} for k, _, _ in WORKLOADS}
    for i in range(rounds):
        note(f"scale, {label}, round {i + 1}/{rounds}")
        runs["sequence"]["plain"].append(plain_chains(r, sizes.chains))
        runs["sequence"]["circuit"].append(circuit_runs(r, engine, *SEQUENCE, sizes.chains)[0])
        runs["parallel"]["plain"].append(plain_chords(r, sizes.chords))
        runs["parallel"]["circuit"].append(circuit_runs(r, engine, *PARALLEL, sizes.chords)[0])
        runs["foreach"]["plain"].append(plain_group(r, sizes.foreach_items))
        runs["foreach"]["circuit"].append(circuit_foreach(r, engine, sizes.foreach_items))
        runs["parallel50"]["plain"].append(plain_chords(r, sizes.wide, 50))
        runs["parallel50"]["circuit"].append(circuit_runs(r, engine, *PARALLEL50, sizes.wide)[0])
    return {k: {side: max(v) for side, v in sides.items()} for k, sides in runs.items()}


@dataclass
class Scale:
    sizes: Sizes
    rounds: int
    one: str  # how the single worker was run
    two: str
    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # "one"/"two" -> measure()
    subscriptions: dict[str, int] = field(default_factory=dict)  # "one"/"two" -> open Redis subscriptions

    def report(self) -> list[str]:
        s = self.sizes
        lines = [
            f"Scale: one worker ({self.one}) against two ({self.two}); best of {self.rounds} round(s). "
            f"Sizes: {s.chains} sequence runs, {s.chords} parallel runs, one foreach run over "
            f"{s.foreach_items} items (100 at a time, the most a foreach allows; the plain group sends all at once), "
            f"{s.wide} runs of the 50-way parallel.",
        ]
        rows = []
        one, two = self.figures.get("one", {}), self.figures.get("two", {})
        for key, label, unit in WORKLOADS:
            if key not in one:
                continue
            p1, c1 = one[key]["plain"], one[key]["circuit"]
            row = [label, unit, f"{p1:.1f}", f"{c1:.1f}", f"{c1 / p1:.2f}x"]
            if key in two:
                p2, c2 = two[key]["plain"], two[key]["circuit"]
                row += [f"{p2:.1f}", f"{c2:.1f}", f"{c2 / p2:.2f}x", f"{p2 / p1:.2f}x", f"{c2 / c1:.2f}x"]
            else:
                row += ["-"] * 5
            rows.append(row)
        lines += table(
            [
                "workload",
                "unit",
                "plain 1w",
                "circuit 1w",
                "ratio",
                "plain 2w",
                "circuit 2w",
                "ratio",
                "plain 2w/1w",
                "circuit 2w/1w",
            ],
            rows,
            left=2,
        )
        if self.subscriptions:
            lines.append(
                "Redis pub/sub subscriptions still open after the measurements (the producer released its own): "
                + ", ".join(f"{k} worker(s): {v}" for k, v in self.subscriptions.items())
            )
        return lines
