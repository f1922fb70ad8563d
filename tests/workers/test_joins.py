"""Joins through the real result backend and Redis: a parallel block joined by its last branch
(workers.joins), and a foreach's batches gathered (workers.steps)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from celery import states
from celery.app.task import Context

from circuits.compiler import JOIN_TASK


def _context(run_id: str, steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": {"id": run_id, "circuit": "t-join", "tenant": "default", "started_at": 0.0},
        "event": {"type": "test.join", "data": {}},
        "steps": steps,
        "vars": {},
        "loop": None,
    }


def _sent(r: Any, queue: str) -> list[list[Any]]:
    """The (args, kwargs, embed) bodies of the messages waiting in ``queue``."""
    return [json.loads(base64.b64decode(json.loads(raw)["body"])) for raw in r.lrange(queue, 0, -1)]


def test_a_block_joins_once_when_its_last_branch_ends_even_if_a_branch_arrives_again(engine_env: Any) -> None:
    from workers.app import app
    from workers.joins import join_key
    from workers.recorder import done_key
    from workers.runtime import runtime

    rt = runtime()
    queue, group, run_id = (f"test-join-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), str(uuid.uuid4()))
    after = {
        "task": "circuit.action.core.noop",
        "args": [],
        "kwargs": {"step": {"id": "after", "with": {}, "retry": {"max": 0}, "final": True}},
        "options": {"queue": queue, "ignore_result": True},
        "subtask_type": None,
        "immutable": False,
    }
    body = {
        "task": JOIN_TASK,
        "args": [],
        "kwargs": {"step": {"id": "fan", "final": False, "branches": 2}},
        "options": {"queue": "core", "chain": [after], "task_id": str(uuid.uuid4()), "group_id": group},
        "subtask_type": None,
        "immutable": False,
    }

    def branch_ends(index: int, steps: dict[str, Any]) -> None:
        part = Context(id=str(uuid.uuid4()), group=group, group_index=index, chord=body, root_id=run_id)
        app.backend.on_chord_part_return(part, states.SUCCESS, _context(run_id, steps))

    try:
        branch_ends(1, {"b": 2})
        assert _sent(rt.redis, queue) == []  # one branch of two: no join yet
        branch_ends(0, {"a": 1})
        sent = _sent(rt.redis, queue)
        assert len(sent) == 1  # the last branch made the join and sent the step after the block
        merged = sent[0][0][0]
        assert merged["steps"] == {"a": 1, "b": 2, "fan": {"branches": 2}}
        assert json.loads(rt.redis.hget(done_key(run_id), "fan")) == {"branches": 2}

        branch_ends(0, {"a": 1})  # both branches' messages come again (redelivered)
        branch_ends(1, {"b": 2})
        assert len(_sent(rt.redis, queue)) == 1  # still one join, one next step
    finally:
        rt.redis.delete(queue, join_key(group), done_key(run_id))


def test_a_foreach_gathers_each_item_once_when_a_resumed_run_batches_it_otherwise(engine_env: Any) -> None:
    """A run resumed after its circuit's concurrency changed writes other batches over the same items:
    each item's output is gathered once, in item order (workers.steps keeps the batches in Redis)."""
    from workers.steps import _gather

    ctx = _context(f"run-{uuid.uuid4()}", {})
    outputs = [{"body": {"n": i}} for i in range(7)]
    for start in (0, 2, 4):  # the first execution: batches of 2, then cut short
        assert _gather(ctx, "each", start, outputs[start : start + 2], False, None) == []
    _gather(ctx, "each", 0, outputs[0:3], False, None)  # resumed with batches of 3
    _gather(ctx, "each", 3, outputs[3:6], False, None)
    assert _gather(ctx, "each", 6, outputs[6:7], True, None) == outputs


def test_a_foreach_joins_label_names_the_foreach_not_an_item() -> None:
    """Flower, traces and logs name a task's step from its message: a foreach's join receives its
    items' contexts, so its step is the foreach itself, one loop out, even nested."""
    from workers import frames
    from workers.context import loop_of
    from workers.tagging import describe

    run = {"id": "r1", "circuit": "c", "tenant": "default"}
    outer = loop_of({"loop": None}, "teams", 1, {"name": "blue"}, "f-teams")
    inner = loop_of({"loop": outer}, "people", 3, "eve", "f-people")
    item = frames.item("f-people", run, inner)
    assert describe("circuit.foreach_join", ([item],), {"step": {"id": "people"}})["step"] == "teams[1].people"
    outer_item = frames.item("f-teams", run, outer)
    assert describe("circuit.foreach_join", ([outer_item],), {"step": {"id": "teams"}})["step"] == "teams"
    assert describe("circuit.action.core.set", (item,), {"step": {"id": "hello"}})["step"] == "teams[1].people[3].hello"
