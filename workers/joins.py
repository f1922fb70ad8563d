"""Parallel blocks that join inside their last branch, not in a join task of their own.

A ``parallel`` block compiles to a Celery chord whose body is the join (``circuit.join``). Celery
would count the branches in its result backend and send the join as one more task, which merges
the branches' contexts and sends the rest of the run. Here every branch, as it ends, adds its
context to the block's join hash (``circuit:join:<group id>``) in one round trip; the branch whose
context completes the hash reads it, merges them, records the join step (its done mark, its ledger record)
and sends what follows in the same MULTI (:mod:`workers.broker`). A run saves a task, its message,
and Celery's join bookkeeping (about five round trips).

It hooks where Celery reports a chord part (the result backend's ``on_chord_part_return``, see
:mod:`workers.backend`), so every
kind of task that can end a branch (an action, an ``if`` that chose nothing, a foreach, a nested
join) takes the same path. A branch's context is added again if its message comes back (a
redelivery, a resume); the join is then made again only if the join step is not done yet, and a
second join only sends a duplicate next step, which its claim turns away (:mod:`workers.claims`).

Chords this does not handle go to Celery as before: failures (the failed step has already
recorded the run as failed), bodies that are not our join (foreach batches), joins compiled by an
older version (no branch count), and setups where messages cannot ride on the state Redis.
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery import states
from celery.app.task import Context
from celery.canvas import signature

from circuits.compiler import JOIN_TASK
from workers import broker, results, tagging
from workers.recorder import DONE_TTL_S


def join_key(group_id: str) -> str:
    return f"circuit:join:{group_id}"


def _ours(request: Any, state: str) -> dict[str, Any] | None:
    """The chord body when this part is a successful branch end of one of our joins, else None."""
    body = request.chord
    if state != states.SUCCESS or not isinstance(body, dict) or body.get("task") != JOIN_TASK:
        return None
    options = body.get("options") or {}
    step = (body.get("kwargs") or {}).get("step") or {}
    if options.get("link") or options.get("link_error") or not isinstance(step.get("branches"), int):
        return None
    if options.get("chord") and options.get("chain"):  # not a shape Celery builds: leave it to Celery
        return None
    if not request.group or request.group_index is None:
        return None
    return body


def handles(backend: Any, request: Any, state: str) -> dict[str, Any] | None:
    """The join (chord body) when this chord part is ours to count, else None (Celery counts it)."""
    from workers.runtime import runtime

    body = _ours(request, state)
    if body is None or not broker.can_ride(backend.app, runtime().settings.redis_url):
        return None
    return body


#: Set in a join hash by the branch that made the join: a branch whose message comes again later (a
#: redelivery) finds it and does not join twice. A resumed or retried run is sent anew, with new group
#: ids, so it joins again (its steps that had succeeded return their stored outputs).
JOINED = b"__joined__"
#: How long a join hash is kept once joined (only its JOINED mark); unjoined, it lives as long as a run.
JOINED_TTL_S = 24 * 3600


def arrive(backend: Any, request: Any, body: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Add a branch's context to its join; the branch that completes it makes the join."""
    from workers import steps, tracing
    from workers.patience import patient
    from workers.runtime import runtime

    rt = runtime()
    step = body["kwargs"]["step"]
    key = join_key(request.group)

    def add() -> Any:
        pipe = rt.redis.pipeline(transaction=True)
        pipe.hset(key, str(request.group_index), json.dumps(ctx, separators=(",", ":"), default=str))
        pipe.expire(key, DONE_TTL_S)
        pipe.hexists(key, JOINED)
        pipe.hlen(key)
        return pipe.execute()[-2:]

    # only the branch that completes the hash reads it: every branch reading it all made a 50-way
    # block move 1,275 contexts out of Redis instead of 50
    joined, count = patient(add, rt.settings.redis_wait_s, "joining branches")
    if joined or count < int(step["branches"]):
        return
    parts = patient(lambda: rt.redis.hgetall(key), rt.settings.redis_wait_s, "joining branches")
    if JOINED in parts:  # another arrival of a branch made the join in between
        return
    branches = {int(k): v for k, v in parts.items()}
    if len(branches) < int(step["branches"]):
        return
    contexts = [json.loads(branches[i]) for i in sorted(branches)]
    send = _continuation(backend, request, body)

    started = time.time()

    def joined_and_next(pipe: Any, merged: dict[str, Any]) -> None:
        pipe.delete(key)  # the contexts are merged: keep only the mark
        pipe.hset(key, JOINED, "1")
        pipe.expire(key, JOINED_TTL_S)
        with broker.riding(pipe):
            # in Flower as if it had run as its task: every step stays in the list, and an ``if`` whose
            # replacement ends in this join (Celery hands it the if's task id) shows as succeeded
            task_id = (body.get("options") or {}).get("task_id")
            kwargs = body.get("kwargs") or {}
            tagging.report(backend.app, JOIN_TASK, task_id, merged, kwargs, started, result="<run context>")
        if send is not None:
            send(pipe, merged)

    with tracing.inline_step(contexts[0], step["id"], JOIN_TASK):
        merged = steps.join_inline(contexts, step, joined_and_next)
    options = body.get("options") or {}
    outer = options.get("chord")
    if outer:  # this block ends a branch of an enclosing chord: it arrives there in turn
        part = Context(
            id=options.get("task_id"),
            group=options.get("group_id"),
            group_index=options.get("group_index"),
            chord=outer,
            root_id=request.root_id,
        )
        backend.on_chord_part_return(part, states.SUCCESS, merged)


def _continuation(backend: Any, request: Any, body: dict[str, Any]) -> Any:
    """What sends the steps after the block (the chord body's chain), onto a pipeline; None if none."""
    options = body.get("options") or {}
    chain = options.get("chain")
    if not chain:
        return None
    app = backend.app
    parent = options.get("task_id")
    root = request.root_id or parent

    def send(pipe: Any, merged: dict[str, Any]) -> None:
        with broker.riding(pipe), results.dropping_new(app.backend):
            signature(chain[-1], app=app).apply_async((merged,), chain=chain[:-1], parent_id=parent, root_id=root)

    return send
