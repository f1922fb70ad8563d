"""A step shows as running while it runs: its "running" record is appended with its claim, and a
late "running" record never overwrites the end of the same execution."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.conftest import new_id, wait_for
from workers.publish import publish


def _step(run_id: str, status: str, started: float, ended: float | None) -> dict[str, Any]:
    return {
        "k": "step", "run_id": run_id, "step_id": "s", "action": "a", "status": status, "attempts": 1,
        "started": started, "ended": ended, "ms": None if ended is None else 5.0, "output": None, "error": None,
    }  # fmt: skip


def test_a_late_running_record_does_not_overwrite_the_end(ledger: Any) -> None:
    from storage.ledger import apply_batch, get_run

    def status(run_id: str) -> str:
        apply_batch(ledger, [{"k": "run", "run_id": run_id, "circuit": "c", "version": "1", "event_id": "e", "at": t}])
        return str(next(s["status"] for s in get_run(ledger, run_id)["steps"]))

    t = time.time()
    a = f"late-{uuid.uuid4()}"
    apply_batch(ledger, [_step(a, "succeeded", t, t + 1)])
    apply_batch(ledger, [_step(a, "running", t, None)])  # a separate, later batch
    assert status(a) == "succeeded"
    b = f"late-{uuid.uuid4()}"
    apply_batch(ledger, [_step(b, "succeeded", t, t + 1), _step(b, "running", t, None)])  # one batch
    assert status(b) == "succeeded"
    c = f"late-{uuid.uuid4()}"
    apply_batch(ledger, [_step(c, "running", t, None)])
    assert status(c) == "running"
    apply_batch(ledger, [_step(c, "retrying", t, t + 1)])
    apply_batch(ledger, [_step(c, "running", t + 2, None)])  # the next attempt
    assert status(c) == "running"


def test_a_running_step_is_in_the_ledger_while_it_runs(ledger: Any, run_of: Any) -> None:
    from storage.ledger import get_run, list_runs

    event = publish("test.counted", {"pause": 2}, id=new_id())

    def pausing() -> dict[str, Any] | None:
        runs = list_runs(ledger, event_id=event.id)
        run = get_run(ledger, runs[0]["id"]) if runs else None
        steps = {s["step_id"]: s for s in run["steps"]} if run else {}
        return steps.get("pause") if steps.get("pause", {}).get("status") == "running" else None

    step = wait_for(pausing, 10, "the pause step recorded as running")
    assert step["ended_at"] is None and step["duration_ms"] is None and step["started_at"] is not None
    run = run_of(event.id, "t-counted")
    assert {s["step_id"]: s["status"] for s in run["steps"]} == {
        "one": "succeeded", "pause": "succeeded", "two": "succeeded", "three": "succeeded",
    }  # fmt: skip
