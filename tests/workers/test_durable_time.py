"""Durable time on a real worker: waits, waits for an event, and child circuits park their run
instead of holding a worker, and go on when the time, the event or the child's end comes."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import new_id, wait_for
from tests.workers.test_durability import executions, status_of
from workers.publish import publish


def steps_of(ledger: Any, run_id: str) -> dict[str, dict[str, Any]]:
    from storage.ledger import get_run

    return {s["step_id"]: s for s in get_run(ledger, run_id)["steps"]}


def test_a_wait_parks_the_run_and_wakes_it_later(ledger: Any, run_of: Any) -> None:
    started = time.time()
    event = publish("test.wait", {"seconds": 2}, id=new_id())
    run_id = wait_for(lambda: _run_id(ledger, event.id), 10, "the run to start")
    wait_for(lambda: steps_of(ledger, run_id).get("nap", {}).get("status") == "waiting", 10, "the run to park")
    assert status_of(ledger, run_id) == "running"
    run = run_of(event.id, "t-wait", timeout=30)
    assert run["status"] == "succeeded"
    assert time.time() - started >= 2
    assert executions(run_id) == {"before": 1, "after": 1}  # `before` was not run again on waking


def test_wait_for_goes_on_when_the_event_arrives_even_just_before(ledger: Any, run_of: Any) -> None:
    lead = new_id("lead")
    event = publish("test.wait_for", {}, subject=lead, id=new_id())
    run_id = wait_for(lambda: _run_id(ledger, event.id), 10, "the run to start")
    wait_for(lambda: steps_of(ledger, run_id).get("reply", {}).get("status") == "waiting", 10, "the run to park")
    publish("test.replied", {"text": "not for you"}, subject=new_id("other"), id=new_id())
    publish("test.replied", {"text": "yes please"}, subject=lead, id=new_id())
    run = run_of(event.id, "t-wait-for", timeout=20)
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["reply"]["output"]["timed_out"] is False
    assert steps["got"]["output"] == {"said": "yes please"}
    assert "chase" not in steps and executions(run_id) == {"sent": 1, "done": 1}

    early = new_id("lead")  # the reply arrives before the run even starts waiting
    publish("test.replied", {"text": "early bird"}, subject=early, id=new_id())
    time.sleep(0.3)
    second = publish("test.wait_for", {}, subject=early, id=new_id())
    run = run_of(second.id, "t-wait-for", timeout=20)
    assert {s["step_id"]: s for s in run["steps"]}["got"]["output"] == {"said": "early bird"}


def test_wait_for_takes_the_timeout_branch(ledger: Any, run_of: Any) -> None:
    event = publish("test.wait_for", {}, subject=new_id("lead"), id=new_id())
    run = run_of(event.id, "t-wait-for", timeout=30)
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["reply"]["output"] == {"timed_out": True, "event": None}
    assert "got" not in steps
    assert executions(run["id"]) == {"sent": 1, "chase": 1, "done": 1}


def test_a_call_runs_a_child_circuit_and_continues_with_its_result(ledger: Any, run_of: Any) -> None:
    from storage.ledger import get_run

    event = publish("test.call", {"n": 20}, id=new_id())
    run = run_of(event.id, "t-call-parent", timeout=30)
    assert run["status"] == "succeeded", run["error"]
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["use"]["output"] == {"total": 41}
    assert len(run["children"]) == 1
    child = get_run(ledger, run["children"][0])
    assert child["circuit"] == "t-call-child" and child["parent_run_id"] == run["id"]

    bad = publish("test.call", {"n": 1, "fail": True}, id=new_id())
    run = run_of(bad.id, "t-call-parent", timeout=30)
    assert run["status"] == "failed" and "child failed on purpose" in run["error"]


def _run_id(ledger: Any, event_id: str) -> str | None:
    from storage.ledger import list_runs

    runs = list_runs(ledger, event_id=event_id)
    return runs[0]["id"] if runs else None


def test_parked_runs_hold_no_worker(ledger: Any, run_of: Any) -> None:
    waits = [publish("test.wait", {"seconds": 4}, id=new_id()) for _ in range(4)]  # the worker has 2 slots
    quick = publish("test.sequence", {"n": 1}, id=new_id())
    assert run_of(quick.id, "t-sequence", timeout=3)["status"] == "succeeded"
    for w in waits:
        assert run_of(w.id, "t-wait", timeout=30)["status"] == "succeeded"


def test_a_wait_outlives_a_worker_restart(ledger: Any, worker: Any, run_of: Any) -> None:
    from workers.app import app

    event = publish("test.wait", {"seconds": 3}, id=new_id())
    run_id = wait_for(lambda: _run_id(ledger, event.id), 10, "the run to start")
    wait_for(lambda: steps_of(ledger, run_id).get("nap", {}).get("status") == "waiting", 10, "the run to park")
    worker.stop()
    try:
        time.sleep(4)  # the wake time passes with no worker at all
        assert status_of(ledger, run_id) == "running"
    finally:
        worker.start()
        worker.wait_ready(app)
    assert run_of(event.id, "t-wait", timeout=30)["status"] == "succeeded"
    assert executions(run_id) == {"before": 1, "after": 1}
