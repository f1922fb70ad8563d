"""Runs finish in the order they came: in a burst, the next steps of runs under way go before the
first steps of new runs, so runs do not all start before any of them ends."""

from __future__ import annotations

from typing import Any

from tests.conftest import new_id, wait_for
from workers.publish import publish


def max_in_flight(runs: list[dict[str, Any]]) -> int:
    """Most runs that had started (first step began) and not yet ended at any one time."""
    edges = []
    for run in runs:
        starts = [s["started_at"] for s in run["steps"]]
        ends = [s["ended_at"] for s in run["steps"]]
        edges += [(min(starts), 1), (max(ends), -1)]
    now = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        now += step
        peak = max(peak, now)
    return peak


def test_a_burst_of_runs_finishes_in_arrival_order(ledger: Any, worker: Any) -> None:
    from storage.ledger import get_run, list_runs

    events = [publish("test.sequence", {"n": i}, id=new_id()) for i in range(60)]

    def all_ended() -> list[dict[str, Any]] | None:
        runs = []
        for e in events:
            found = list_runs(ledger, event_id=e.id, circuit="t-sequence")
            if not found or found[0]["status"] != "succeeded":
                return None
            runs.append(found[0])
        return runs

    runs = [get_run(ledger, r["id"]) for r in wait_for(all_ended, 60, "60 runs to end")]
    assert all(r and len(r["steps"]) == 3 for r in runs)
    # two pool processes, prefetch 1: without the continuation lane all 60 runs start before any ends
    assert max_in_flight(runs) <= 12, max_in_flight(runs)  # type: ignore[arg-type]
