"""Faults and run control on real Redis, PostgreSQL and a prefork worker: a run stranded by a lost
message is resumed without repeating a step, a failed run resumes from its failed step, a cancelled
run stops at its next step, poison is set aside and a database outage loses nothing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.actions import EXECUTIONS
from tests.conftest import new_id, wait_for
from workers.publish import publish


def executions(run_id: str) -> dict[str, int]:
    from workers.runtime import runtime

    raw = runtime().redis.hgetall(EXECUTIONS)
    prefix = f"{run_id}:"
    return {k.decode()[len(prefix) :]: int(v) for k, v in raw.items() if k.decode().startswith(prefix)}


def status_of(ledger: Any, run_id: str) -> str | None:
    from storage.ledger import get_run

    run = get_run(ledger, run_id)
    return run["status"] if run else None


def test_a_failed_run_resumes_from_its_failed_step(ledger: Any, run_of: Any) -> None:
    from workers import control
    from workers.runtime import runtime

    gate = f"gate-{uuid.uuid4()}"
    event = publish("test.counted", {"gate": gate}, id=new_id())
    run = run_of(event.id, "t-counted")
    assert run["status"] == "failed" and "gate" in run["error"]
    assert executions(run["id"]) == {"one": 1, "two": 1}

    runtime().redis.set(gate, "1")
    done = control.retry(runtime(), run["id"])
    assert done.forgotten == []
    wait_for(lambda: status_of(ledger, run["id"]) == "succeeded", 30, "the retried run to succeed")
    assert executions(run["id"]) == {"one": 1, "two": 2, "three": 1}  # `one` was not run again

    again = control.retry(runtime(), run["id"], from_step="two")
    assert again.forgotten == ["three", "two"]
    wait_for(lambda: executions(run["id"]).get("three") == 2, 30, "steps from `two` on to run again")
    wait_for(lambda: status_of(ledger, run["id"]) == "succeeded", 30, "the second retry to succeed")
    assert executions(run["id"]) == {"one": 1, "two": 3, "three": 2}


def test_retrying_a_running_run_or_an_unknown_step_is_refused(ledger: Any, run_of: Any) -> None:
    from circuits.errors import NotFoundError
    from workers import control
    from workers.runtime import runtime

    event = publish("test.counted", {"pause": 1.5}, id=new_id())
    run_id = wait_for(lambda: _run_id(ledger, event.id), 10, "the run to start")
    with pytest.raises(control.RunStateError, match="still running"):
        control.retry(runtime(), run_id)
    run_of(event.id, "t-counted")
    with pytest.raises(NotFoundError, match="no step 'nope'"):
        control.retry(runtime(), run_id, from_step="nope")
    with pytest.raises(NotFoundError, match="no saved state"):
        control.retry(runtime(), "no-such-run")


def _run_id(ledger: Any, event_id: str) -> str | None:
    from storage.ledger import list_runs

    runs = list_runs(ledger, event_id=event_id)
    return runs[0]["id"] if runs else None


def test_a_cancelled_run_stops_at_its_next_step(ledger: Any, worker: Any) -> None:
    from workers import control
    from workers.runtime import runtime

    event = publish("test.counted", {"pause": 2}, id=new_id())
    run_id = wait_for(lambda: _run_id(ledger, event.id), 10, "the run to start")
    wait_for(lambda: executions(run_id).get("one") == 1, 10, "the first step")
    assert control.cancel(runtime(), run_id) == "cancelling"
    wait_for(lambda: status_of(ledger, run_id) == "cancelled", 20, "the run to be cancelled")
    from storage.ledger import get_run

    steps = {s["step_id"]: s["status"] for s in get_run(ledger, run_id)["steps"]}
    assert steps["pause"] == "succeeded"  # the running step finished
    assert steps["two"] == "cancelled" and "three" not in steps
    assert executions(run_id) == {"one": 1}
    with pytest.raises(control.RunStateError, match="already ended"):
        control.cancel(runtime(), run_id)


def test_the_watchdog_resumes_a_run_whose_message_was_lost(ledger: Any, worker: Any) -> None:
    """Ingest recorded the run and died before sending it (the defect seen when killing ingest)."""
    from circuits.events import Event
    from workers import progress, recorder
    from workers.context import new_context
    from workers.ingest import run_id_for
    from workers.runtime import runtime
    from workers.watchdog import Watchdog

    rt = runtime()
    event = Event(id=new_id(), source="test", type="test.counted", data={})
    entry = rt.catalog.get("t-counted")
    run_id = run_id_for(event, entry.name)
    ctx = new_context(run_id, entry.name, entry.version, event, event.as_context(), entry.circuit.vars)
    pipe = rt.redis.pipeline()
    recorder.open_run(pipe, run_id)
    progress.track(pipe, run_id, ctx, stall_s=0.0)  # already past its deadline
    recorder.add_records(
        pipe,
        [
            {
                "k": "run",
                "run_id": run_id,
                "circuit": entry.name,
                "version": entry.version,
                "event_id": event.id,
                "event_type": event.type,
                "at": time.time(),
            }
        ],
    )
    pipe.execute()

    assert run_id in Watchdog(rt).scan()
    wait_for(lambda: status_of(ledger, run_id) == "succeeded", 30, "the resumed run to end")
    assert executions(run_id) == {"one": 1, "two": 1, "three": 1}
    assert run_id not in Watchdog(rt).scan()  # ended runs leave the watch list
    assert rt.redis.zscore(progress.ACTIVE, run_id) is None


def test_a_step_sent_twice_runs_once(ledger: Any, run_of: Any) -> None:
    """A resume that races the original messages: every step still runs exactly once."""
    from workers import progress
    from workers.runtime import runtime

    rt = runtime()
    event = publish("test.counted", {"pause": 1}, id=new_id())
    run_id = wait_for(lambda: _run_id(ledger, event.id), 10, "the run to start")
    wait_for(lambda: executions(run_id).get("one") == 1, 10, "the first step")
    ctx = progress.saved_context(rt.redis, run_id)
    assert ctx is not None
    progress.launch(rt.catalog.get("t-counted").canvas, ctx)  # a second copy while the first is mid-run
    run_of(event.id, "t-counted")
    time.sleep(1.5)  # let the copy walk the whole run too
    assert executions(run_id) == {"one": 1, "two": 1, "three": 1}


def test_a_poison_entry_does_not_stop_stream_ingest(ledger: Any, worker: Any) -> None:
    from storage.ledger import rejected_events
    from workers.runtime import runtime
    from workers.stream_ingest import StreamIngest

    rt = runtime()
    good = [new_id(), new_id()]
    deep: Any = "x"
    for _ in range(1000):
        deep = {"d": deep}
    stream = rt.settings.event_stream
    rt.redis.xadd(stream, {"event": json.dumps({"id": good[0], "type": "test.counted", "source": "t", "data": {}})})
    rt.redis.xadd(
        stream,
        {"event": '{"id": "poison", "type": "test.counted", "source": "t", "data": ' + "[" * 1000 + "]" * 1000 + "}"},
    )
    rt.redis.xadd(stream, {"event": json.dumps({"id": good[1], "type": "test.counted", "source": "t", "data": {}})})
    StreamIngest(rt).drain(timeout_s=10)
    for event_id in good:
        wait_for(lambda e=event_id: _run_id(ledger, e), 20, f"a run for {event_id}")
    assert rt.redis.xlen(stream) == 0
    wait_for(
        lambda: any(r["origin"] == "stream" and "poison" in r["raw"] for r in rejected_events(ledger, 20)),
        10,
        "the poison entry as a dead letter",
    )


def test_the_ledger_waits_out_a_database_outage_and_sets_aside_a_refused_record(engine_env: Any, ledger: Any) -> None:
    import redis as redis_lib

    from storage.base import make_engine
    from storage.ledger import get_run
    from workers.embedded import free_port
    from workers.ledger_writer import DEAD_LETTERS, LedgerWriter

    r = redis_lib.Redis.from_url(engine_env["CIRCUIT_REDIS_URL"])
    stream = f"test:ledger:{uuid.uuid4().hex}"
    run_ids = [f"outage-{uuid.uuid4()}" for _ in range(20)]
    for rid in run_ids:
        r.xadd(
            stream,
            {
                "r": json.dumps(
                    {"k": "run", "run_id": rid, "circuit": "c", "version": "1", "event_id": "e", "at": time.time()}
                )
            },
        )
    r.xadd(stream, {"r": json.dumps({"k": "step", "run_id": "x", "step_id": "s", "status": None, "attempts": 1})})
    r.xadd(stream, {"r": "not json"})

    away = LedgerWriter(r, make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"))
    away.stream = stream
    away.ensure_group()
    with pytest.raises(Exception) as exc:
        away.poll()
    assert away.is_outage(exc.value)
    assert r.xlen(stream) == 22  # nothing acknowledged, nothing dropped

    writer = LedgerWriter(r, ledger)
    writer.stream = stream
    writer.drain(timeout_s=10)
    assert r.xlen(stream) == 0
    assert all(get_run(ledger, rid) for rid in run_ids)
    dead = [f[b"error"].decode() for _, f in r.xrange(DEAD_LETTERS)][-2:]
    assert any("not a ledger record" in d for d in dead) and any("IntegrityError" in d for d in dead)


def test_the_ledger_writer_lingers_only_once_batches_grow(engine_env: Any, ledger: Any) -> None:
    """A run's few records are written at once; under load the writer waits between transactions so
    its batches grow to hundreds (measured: a third less CPU for the writer and PostgreSQL); a trickle
    waits a little, so runs a few milliseconds apart share a transaction."""
    import redis as redis_lib

    from workers.ledger_writer import LedgerWriter

    writer = LedgerWriter(redis_lib.Redis.from_url(engine_env["CIRCUIT_REDIS_URL"]), ledger, batch=500)
    assert writer.linger_for(3) == writer.min_linger_s
    assert 0.005 <= writer.min_linger_s <= 0.05
    assert writer.linger_for(125) == pytest.approx(writer.linger_s / 2)
    assert writer.linger_for(250) == writer.linger_for(500) == writer.linger_s >= 0.2
