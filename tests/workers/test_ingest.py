"""Events in: duplicates, malformed events, the Redis Stream path and its recovery."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from circuits.errors import EventError
from tests.conftest import new_id, wait_for
from workers.publish import publish


def test_duplicate_event_id_or_idempotency_key_starts_nothing_new(ledger: Any, run_of: Any, worker: Any) -> None:
    from storage.ledger import list_runs

    first = publish("test.sequence", {"n": 1}, id=new_id(), idempotency_key=new_id("key"))
    run = run_of(first.id)
    publish("test.sequence", {"n": 2}, id=first.id)  # same id
    again = publish("test.sequence", {"n": 3}, id=new_id(), idempotency_key=first.idempotencykey)  # same key
    for event_id in (first.id, again.id):  # both have been handled, as duplicates
        wait_for(lambda e=event_id: f"event {e} (test.sequence) already seen" in worker.output(), 15, "the duplicate")
    time.sleep(0.5)  # the ledger writer flushes well within this
    assert [r["id"] for r in list_runs(ledger, event_id=first.id)] == [run["id"]]
    assert list_runs(ledger, event_id=again.id) == []
    assert run_of(first.id)["steps"][0]["output"] == {"doubled": 2}


def test_malformed_event_names_the_field_and_is_dead_lettered(ledger: Any, worker: Any) -> None:
    from storage.ledger import rejected_events

    marker = new_id("bad")
    with pytest.raises(EventError) as err:
        publish("not-dotted", {"marker": marker})
    assert err.value.field == "type"

    def kept() -> dict[str, Any] | None:
        return next((r for r in rejected_events(ledger, 100) if marker in r["raw"]), None)

    row = wait_for(kept, 15, "the dead letter")
    assert row["field"] == "type" and row["origin"] == "publish"


def test_event_over_the_size_limit_is_rejected(engine_env: Any) -> None:
    with pytest.raises(EventError, match="over the limit"):
        publish("test.sequence", {"blob": "x" * (300 * 1024)})


def _stream_ingest() -> Any:
    from workers.runtime import runtime
    from workers.stream_ingest import StreamIngest

    return StreamIngest(runtime())


def test_stream_path_from_any_language(ledger: Any, run_of: Any) -> None:
    """A producer with only a Redis client XADDs the envelope; `circuit-os ingest` starts the run."""
    from storage.ledger import list_runs, rejected_events
    from workers.runtime import runtime

    r = runtime().redis
    stream = runtime().settings.event_stream
    good_id, bad_marker = new_id("stream"), new_id("junk")
    r.xadd(stream, {"event": "{not json " + bad_marker})
    r.xadd(stream, {"payload": bad_marker})
    good = json.dumps({"type": "test.sequence", "source": "php-app", "id": good_id, "data": {"n": 5}})
    r.xadd(stream, {"event": good})
    r.xadd(stream, {"event": good})  # a producer's retry, in the same batch: it starts nothing more
    _stream_ingest().drain(timeout_s=10)
    assert run_of(good_id)["steps"][0]["output"] == {"doubled": 10}
    time.sleep(0.5)
    assert len(list_runs(ledger, event_id=good_id)) == 1
    rejected = [r for r in rejected_events(ledger, 200) if bad_marker in r["raw"]]
    assert {row["origin"] for row in rejected} == {"stream"}
    assert sorted(row["field"] for row in rejected) == ["(entry)", "(envelope)"]
    assert r.xinfo_groups(stream)[0]["pending"] == 0


def test_entries_left_pending_by_a_dead_ingester_are_reclaimed(run_of: Any) -> None:
    from workers.runtime import runtime

    r = runtime().redis
    stream = runtime().settings.event_stream
    dead = _stream_ingest()
    dead.ensure_group()
    event_id = new_id("orphan")
    r.xadd(stream, {"event": json.dumps({"type": "test.sequence", "source": "x", "id": event_id, "data": {"n": 7}})})
    # the "dead" consumer reads the entry and never acknowledges it
    r.xreadgroup(dead.group, "crashed-consumer", {stream: ">"}, count=10)
    assert r.xpending(stream, dead.group)["pending"] == 1
    survivor = _stream_ingest()
    survivor.claim_idle_ms = 100
    time.sleep(0.2)
    survivor.drain(timeout_s=10)
    assert run_of(event_id)["status"] == "succeeded"
    assert r.xpending(stream, dead.group)["pending"] == 0


def test_a_redelivered_step_that_already_succeeded_is_not_run_again(ledger: Any, run_of: Any, worker: Any) -> None:
    """Replay a step's message the way Redis restores an unacknowledged one (flagged redelivered)."""
    from celery.canvas import Signature

    from workers.app import app
    from workers.runtime import runtime

    event = publish("test.sequence", {"n": 3}, id=new_id())
    run = run_of(event.id)
    first = run["steps"][0]
    assert first["output"] == {"doubled": 6}
    ctx = {
        "run": {"id": run["id"], "circuit": "t-sequence", "version": "x", "event_id": event.id, "tenant": "default"},
        "event": {"data": {"n": 1000}},
        "steps": {},
        "vars": {},
        "loop": None,
    }
    step = {"id": "first", "with": {"doubled": "{{ event.data.n * 2 }}"}, "retry": {"max": 0}, "final": False}
    r = runtime().redis
    # park the message on a queue no worker reads, then restore it to `core` as kombu does
    Signature("circuit.action.core.set", args=(ctx,), kwargs={"step": step}, app=app).apply_async(queue="parked")
    payload = json.loads(wait_for(lambda: r.rpop("parked"), 5, "the parked message"))
    payload["properties"]["delivery_info"].update(redelivered=True, routing_key="core", exchange="")
    payload["headers"]["redelivered"] = True
    r.lpush("core", json.dumps(payload))

    def log() -> str:
        return worker.output()

    wait_for(
        lambda: "already succeeded; not running it again" in log() and run["id"] in log(),
        15,
        "the worker to skip the step",
    )
    time.sleep(0.5)
    from storage.ledger import get_run

    again = {s["step_id"]: s for s in get_run(ledger, run["id"])["steps"]}
    assert again["first"]["output"] == {"doubled": 6}  # not 2000: the step did not run again


def test_direct_publish_mode_starts_the_run_from_the_producer(run_of: Any) -> None:
    from workers.runtime import runtime

    settings = runtime().settings
    settings.publish_mode = "direct"
    try:
        event = publish("test.sequence", {"n": 8}, id=new_id("direct"))
    finally:
        settings.publish_mode = "worker"
    assert run_of(event.id)["steps"][1]["output"] == {"plus_one": 17}


def test_a_batch_of_runs_is_sent_in_growing_slices_so_its_first_runs_start_early() -> None:
    from workers.ingest import FIRST_SEND, LARGEST_SEND, sends

    for n in (0, 1, 3, 4, 5, 60, 250, 1000):
        parts = list(sends(list(range(n))))
        assert [x for part in parts for x in part] == list(range(n))  # every run once, in order
        assert not n or len(parts[0]) == min(n, FIRST_SEND)
        assert all(0 < len(part) <= LARGEST_SEND for part in parts)
    assert [len(p) for p in sends(list(range(250)))] == [4, 8, 16, 32, 64, 64, 62]  # 7 round trips, not 1 or 250


def test_a_run_is_sent_only_while_new_and_an_event_that_starts_nothing_is_recorded(ledger: Any, run_of: Any) -> None:
    """Ingest sends a run by a script that first sets its started mark: a run another reader has sent is
    not sent again, and an event that starts nothing is still in the ledger."""
    from circuits.events import parse_event
    from storage.ledger import EventRow
    from workers.ingest import accept, run_id_for
    from workers.runtime import runtime

    rt = runtime()
    sent = parse_event({"type": "test.sequence", "source": "x", "id": new_id("sent"), "data": {"n": 4}})
    rt.redis.set(f"circuit:started:{run_id_for(sent, 't-sequence')}", "1")  # another reader sent it
    assert accept(rt, sent).run_ids == []
    fresh = parse_event({"type": "test.sequence", "source": "x", "id": new_id("fresh"), "data": {"n": 5}})
    [run_id] = accept(rt, fresh).run_ids
    assert run_of(fresh.id)["id"] == run_id
    assert accept(rt, fresh, reclaimed=True).run_ids == []  # a replay of an event whose run ended
    lonely = parse_event({"type": "test.nobody-listens", "source": "x", "id": new_id("lonely"), "data": {}})
    assert accept(rt, lonely).run_ids == []

    def recorded() -> Any:
        with ledger.connect() as conn:
            return conn.execute(sa.select(EventRow.id).where(EventRow.id == lonely.id)).first()

    wait_for(recorded, 15, "the event that started nothing, in the ledger")
