"""Stateful triggers on a real worker: each fires exactly once per condition, with the events
accepted by two ingesters at once (the worker's two pool processes and this test process)."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa

from tests.conftest import new_id, wait_for
from workers.publish import publish


def fired(ledger: Any, circuit: str, key: str) -> list[dict[str, Any]]:
    """Runs of ``circuit`` started by a trigger event about ``key``, with their step outputs."""
    from storage.ledger import EventRow, RunRow, get_run

    with ledger.connect() as conn:
        ids = (
            conn.execute(
                sa.select(RunRow.id)
                .join(EventRow, EventRow.id == RunRow.event_id)
                .where(RunRow.circuit == circuit, EventRow.subject == key)
            )
            .scalars()
            .all()
        )
    return [r for r in (get_run(ledger, i) for i in ids) if r]


def ended(ledger: Any, circuit: str, key: str, n: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (
            (runs := fired(ledger, circuit, key))
            and len(runs) >= n
            and all(r["status"] == "succeeded" for r in runs)
            and runs
        ),
        20,
        f"{n} run(s) of {circuit} for {key}",
    )


def from_two_ingesters(events: list[tuple[str, dict[str, Any], str]]) -> None:
    """Half the events through the worker's ingest task, half accepted right here, at once."""
    from circuits.events import Event
    from workers.ingest import accept
    from workers.runtime import runtime

    def direct(batch: list[tuple[str, dict[str, Any], str]]) -> None:
        for type_, data, subject in batch:
            accept(runtime(), Event(id=new_id(), source="test", type=type_, data=data, subject=subject))

    thread = threading.Thread(target=direct, args=(events[1::2],))
    thread.start()
    for type_, data, subject in events[0::2]:
        publish(type_, data, subject=subject, id=new_id())
    thread.join()


def test_threshold_fires_once_per_crossing(ledger: Any, worker: Any) -> None:
    lead = new_id("lead")
    for score in (50, 85, 90, 95):  # one crossing, then more events above the level
        publish("test.scored", {"score": score}, subject=lead, id=new_id())
        time.sleep(0.2)
    runs = ended(ledger, "t-threshold", lead, 1)
    time.sleep(1)
    assert len(fired(ledger, "t-threshold", lead)) == 1
    assert runs[0]["steps"][0]["output"] == {"crossed": 85.0, "was": 50.0}
    for score in (60, 81):  # down below, then up again: a second crossing
        publish("test.scored", {"score": score}, subject=lead, id=new_id())
        time.sleep(0.2)
    assert len(ended(ledger, "t-threshold", lead, 2)) == 2


def test_count_in_a_window_fires_once_and_hands_over_its_events(ledger: Any, worker: Any) -> None:
    lead = new_id("lead")
    from_two_ingesters([("test.visited", {"page": f"p{i}"}, lead) for i in range(7)])
    runs = ended(ledger, "t-count", lead, 2)
    time.sleep(1)
    runs = fired(ledger, "t-count", lead)
    assert len(runs) == 2  # 7 visits: two windows of 3 filled, one visit left over
    pages = sorted(p for r in runs for p in r["steps"][0]["output"]["pages"])
    assert all(r["steps"][0]["output"]["visits"] == 3 for r in runs)
    assert len(set(pages)) == 6


def test_all_of_and_sequence_fire_once_per_completed_pattern(ledger: Any, worker: Any) -> None:
    lead, other = new_id("lead"), new_id("lead")
    from_two_ingesters(
        [("test.pricing_viewed", {}, lead), ("test.demo_requested", {}, lead), ("test.demo_requested", {}, other)]
    )
    runs = ended(ledger, "t-all-of", lead, 1)
    assert sorted(runs[0]["steps"][0]["output"]["types"]) == ["test.demo_requested", "test.pricing_viewed"]
    time.sleep(1)
    assert fired(ledger, "t-all-of", other) == []

    for type_ in ("test.step_b", "test.step_a", "test.step_c", "test.step_b", "test.step_c"):
        publish(type_, {}, subject=lead, id=new_id())  # b (ignored), then a, c (out of order), b, c
        time.sleep(0.15)
    runs = ended(ledger, "t-sequence-trigger", lead, 1)
    time.sleep(1)
    assert len(fired(ledger, "t-sequence-trigger", lead)) == 1 and runs[0]["steps"][0]["output"] == {"n": 3}


def test_absence_fires_when_the_expected_event_does_not_come(ledger: Any, worker: Any) -> None:
    from workers.runtime import runtime
    from workers.watchdog import Watchdog

    silent, answered = new_id("lead"), new_id("lead")
    publish("test.sent", {"topic": "pricing"}, subject=silent, id=new_id())
    publish("test.sent", {"topic": "demo"}, subject=answered, id=new_id())
    time.sleep(0.5)
    publish("test.answered", {}, subject=answered, id=new_id())
    time.sleep(2.5)
    dogs = [Watchdog(runtime()), Watchdog(runtime())]  # two watchdogs race for the due absence
    threads = [threading.Thread(target=d.scan) for d in dogs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = ended(ledger, "t-absence", silent, 1)
    assert runs[0]["steps"][0]["output"] == {"about": "pricing", "missing": "test.answered"}
    time.sleep(1)
    assert len(fired(ledger, "t-absence", silent)) == 1
    assert fired(ledger, "t-absence", answered) == []
