"""Per-key concurrency and per-action rate limits, on a real Redis, prefork worker and ledger."""

from __future__ import annotations

import time
import uuid
from typing import Any

from circuits.rates import parse_rate
from tests.conftest import new_id, wait_for
from workers import limits, recorder
from workers.ingest import run_id_for
from workers.publish import publish
from workers.runtime import runtime

CIRCUIT = "t-concurrency"


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["step_id"] == step_id)


def base_of(subject: str) -> str:
    return limits.slot_base(CIRCUIT, "default", subject)


def admitted(event: Any, subject: str) -> bool:
    """Ingest has decided: the run holds a slot, waits in the key's list, or has already ended."""
    r = runtime().redis
    run_id = run_id_for(event, CIRCUIT)
    base = base_of(subject)
    return (
        r.zscore(f"{base}:slots", run_id) is not None
        or r.lpos(f"{base}:queue", run_id) is not None
        or r.hexists(recorder.done_key(run_id), recorder.END_FIELD)
    )


def test_runs_of_one_key_run_one_at_a_time_in_publish_order(run_of: Any) -> None:
    subject = f"lead-{uuid.uuid4().hex[:8]}"
    events = []
    for order in range(5):
        event = publish("test.concurrency", {"seconds": 0.3, "order": order}, id=new_id(), subject=subject)
        wait_for(lambda e=event: admitted(e, subject), 15, "ingest to admit the run")  # type: ignore[misc]
        events.append(event)
    runs = [run_of(e.id, CIRCUIT, timeout=30) for e in events]
    assert [r["status"] for r in runs] == ["succeeded"] * 5
    assert [step(r, "done")["output"] for r in runs] == [{"order": i} for i in range(5)]
    naps = [step(r, "nap") for r in runs]
    for before, after in zip(runs, runs[1:], strict=False):
        assert step(before, "done")["ended_at"] <= step(after, "nap")["started_at"], "two runs of one key overlapped"
    assert [r["ended_at"] for r in runs] == sorted(r["ended_at"] for r in runs)
    assert all(n["attempts"] == 1 for n in naps)
    r = runtime().redis
    assert r.zcard(f"{base_of(subject)}:slots") == 0 and r.llen(f"{base_of(subject)}:queue") == 0


def test_runs_of_different_keys_run_in_parallel(run_of: Any) -> None:
    events = [
        publish("test.concurrency", {"seconds": 1.5, "order": i}, id=new_id(), subject=f"lead-{uuid.uuid4().hex[:8]}")
        for i in range(2)
    ]
    first, second = (step(run_of(e.id, CIRCUIT, timeout=30), "nap") for e in events)
    assert first["started_at"] < second["ended_at"] and second["started_at"] < first["ended_at"]


def test_a_key_that_cannot_be_computed_fails_the_run_with_the_reason(run_of: Any) -> None:
    event = publish("test.concurrency", {"seconds": 0, "order": 0}, id=new_id())  # no subject
    run = run_of(event.id, CIRCUIT)
    assert run["status"] == "failed"
    assert "trigger.concurrency.key" in run["error"] and "event.subject" in run["error"]
    assert run["steps"] == []


def test_a_slot_left_by_a_run_that_ended_or_lost_its_lease_is_reclaimed(run_of: Any) -> None:
    r = runtime().redis
    for ghost_state in ("ended", "expired"):
        subject = f"lead-{uuid.uuid4().hex[:8]}"
        ghost = f"ghost-{uuid.uuid4()}"
        if ghost_state == "ended":  # it ended but its worker died before freeing the slot
            r.hset(recorder.done_key(ghost), recorder.END_FIELD, "succeeded")
            r.expire(recorder.done_key(ghost), 600)
            r.zadd(f"{base_of(subject)}:slots", {ghost: time.time() + 3600})
        else:  # it holds the slot past its lease
            r.zadd(f"{base_of(subject)}:slots", {ghost: time.time() - 1})
        event = publish("test.concurrency", {"seconds": 0, "order": 1}, id=new_id(), subject=subject)
        assert run_of(event.id, CIRCUIT, timeout=15)["status"] == "succeeded", ghost_state


def test_a_sweep_starts_a_waiting_run_whose_slot_was_never_freed(run_of: Any, ledger: Any) -> None:
    from storage.ledger import list_runs

    r = runtime().redis
    subject = f"lead-{uuid.uuid4().hex[:8]}"
    ghost = f"ghost-{uuid.uuid4()}"
    r.zadd(f"{base_of(subject)}:slots", {ghost: time.time() + 3600})  # a live holder, as far as Redis knows
    event = publish("test.concurrency", {"seconds": 0, "order": 1}, id=new_id(), subject=subject)
    wait_for(lambda: admitted(event, subject), 15, "the run to wait for the slot")
    [waiting] = wait_for(lambda: list_runs(ledger, event_id=event.id), 10, "the run in the ledger")
    time.sleep(0.3)
    assert waiting["status"] == "running" and not r.hexists(recorder.done_key(waiting["id"]), "nap")
    r.hset(recorder.done_key(ghost), recorder.END_FIELD, "failed")  # it ended; nobody freed the slot
    r.expire(recorder.done_key(ghost), 600)
    # the worker's watchdog sweeps too and may get there first: either sweep starts the run, once
    started = limits.sweep(runtime())
    queue = f"{base_of(subject)}:queue"
    assert run_id_for(event, CIRCUIT) in started or r.lpos(queue, run_id_for(event, CIRCUIT)) is None
    assert run_of(event.id, CIRCUIT, timeout=15)["status"] == "succeeded"


def test_a_rate_limit_spreads_calls_across_workers(run_of: Any) -> None:
    event = publish("test.rate_limit", {"items": list(range(10))}, id=new_id())
    run = run_of(event.id, "t-rate-limit", timeout=30)
    assert run["status"] == "succeeded", run["error"]
    ticks = [s for s in run["steps"] if s["step_id"].endswith(".tick")]
    assert len(ticks) == 10 and all(s["attempts"] == 1 for s in ticks)  # a wait is not an attempt
    starts = sorted(s["started_at"].timestamp() for s in ticks)
    assert starts[-1] - starts[0] >= 1.7, starts  # 10 calls at 5/s: nine gaps of 0.2 s
    # no call before its reserved instant (a busy worker may start one a little late, never early)
    assert all(t - starts[0] >= i * 0.2 - 0.05 for i, t in enumerate(starts)), starts
    assert step(run, "each")["output"] == {"items": 10}


def test_reservations_are_distinct_instants_and_tenants_have_their_own_bucket(engine_env: Any) -> None:
    r = runtime().redis
    rate = parse_rate("10/s per tenant")
    key_a, key_b = (limits.bucket(f"test.{uuid.uuid4().hex[:6]}", rate, t) for t in ("a", "b"))
    waits = [limits.acquire_rate(r, key_a, rate)[0] for _ in range(4)]
    assert waits[0] == 0 and [round(w, 1) for w in waits[1:]] == [0.1, 0.2, 0.3]
    assert limits.acquire_rate(r, key_b, rate)[0] == 0
    wait, at = limits.acquire_rate(r, key_a, rate)
    assert limits.acquire_rate(r, key_a, rate, reserved_ms=at)[1] == at  # a reservation is kept, not renewed
    time.sleep(wait + 0.01)
    assert limits.acquire_rate(r, key_a, rate, reserved_ms=at)[0] == 0
