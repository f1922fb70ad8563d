"""Quick steps run in the task of the step before them (``CIRCUIT_INLINE_STEPS_S``, 0.5 s; 0 turns it off).

A 5-step sequence is five Celery tasks: five messages through Redis, the worker's main process and
a pool child, where the steps' own work may take microseconds. With ``CIRCUIT_INLINE_STEPS_S`` set,
a step whose next step is an action on the same queue, with the same time limits and no rate limit,
runs that step right here while its task has run less than that many seconds (as Temporal runs a
local activity). Each step keeps what makes it a step: its claim, done mark, ledger records, retry
policy (a retry is sent as the step's own message), trace span, and its entries in Flower (received,
then succeeded, retried or failed, sent as a worker would).

What changes (set ``CIRCUIT_INLINE_STEPS_S=0`` where any of it matters more than speed):

* the steps share one task's time limits: a step run here has its limit less the time the task
  has already run (at most ``CIRCUIT_INLINE_STEPS_S``);
* they run on the pool child that ran the step before them, not on whichever is free;
* Celery's own per-task signals and logs (``task_prerun``, "Task ... succeeded") come once per
  task, not once per step; the engine's logs, metrics, ledger and spans are per step as before.

A step killed here comes back as the first step of its task did: that message is redelivered (acks
late), its done steps return their stored outputs, and the step in flight is claimed again
(:mod:`workers.claims`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
from celery import Task
from celery._state import _task_stack
from celery.exceptions import Ignore, Retry
from celery.utils import uuid

from circuits.compiler import ACTION_TASK_PREFIX
from circuits.errors import ActionError
from workers import broker, tagging, tracing
from workers.runtime import Runtime

#: Options of a chain's next task that keep it a task of its own: it ends a branch of a chord or a
#: group, something follows it outside the chain, or it must wait.
_ITS_OWN = ("chord", "group_id", "link", "link_error", "countdown", "eta", "expires")
#: Steps run inside one task, at most: the chain of calls stays shallow whatever the budget.
MAX_DEPTH = 16
_SINCE, _DEPTH = "circuit_inline_since", "circuit_inline_depth"


def run_next(task: Task, rt: Runtime, ctx: dict[str, Any], step_started: float) -> bool:
    """Run the chain's next step in this task if it may (see the module); True when it ran, whatever
    its outcome. ``step_started``: when the step that just ended began, if this task has no older start."""
    found = _next(task, rt, ctx, step_started)
    if found is None:
        return False
    nxt, step, request = found
    started = time.time()
    outcome: str | None = "task-succeeded"
    fields: dict[str, Any] = {"result": "<run context>"}
    nxt.push_request(**request)
    _task_stack.push(nxt)  # the current task, for the step's log fields (workers.logs) and Celery's own
    try:
        with tracing.inline_step(ctx, step["id"], nxt.name):
            nxt.run(ctx, step)
    except Retry as exc:  # its retry went out as its own message
        outcome, fields = "task-retried", {"exception": str(exc)}
    except Ignore:
        outcome = None
    except ActionError as exc:  # recorded: the step and its run failed
        outcome, fields = "task-failed", {"exception": str(exc)}
    finally:
        _task_stack.pop()
        nxt.pop_request()
    pipe = rt.redis.pipeline(transaction=False)
    with contextlib.suppress(redis.RedisError):  # monitoring only: the step is recorded already
        with broker.riding(pipe):
            tagging.report(task.app, nxt.name, request["id"], ctx, {"step": step}, started, outcome, **fields)
        pipe.execute()
    return True


def _next(
    task: Task, rt: Runtime, ctx: dict[str, Any], step_started: float
) -> tuple[Task, dict[str, Any], dict[str, Any]] | None:
    """The next task, its step and the request it runs under, when it may run here; else None."""
    budget = rt.settings.inline_steps_s
    r = task.request
    chain = r.chain
    if not budget or not chain:
        return None
    since = getattr(r, _SINCE, None) or step_started
    depth = int(getattr(r, _DEPTH, None) or 0)
    if depth >= MAX_DEPTH or time.time() - since >= budget:
        return None
    sig = chain[-1]
    name, options = str(sig.get("task") or ""), sig.get("options") or {}
    if not name.startswith(ACTION_TASK_PREFIX) or name not in task.app.tasks or sig.get("args"):
        return None
    if any(options.get(k) for k in _ITS_OWN) or sig.get("immutable"):
        return None
    step = (sig.get("kwargs") or {}).get("step")
    if not isinstance(step, dict) or step.get("rate_limit"):
        return None
    queue = (r.delivery_info or {}).get("routing_key")
    if not queue or options.get("queue") != queue:
        return None
    limits = tuple(r.timelimit or (None, None))
    if (options.get("time_limit"), options.get("soft_time_limit")) != limits:
        return None
    task_id = options.get("task_id") or uuid()
    request = {
        "id": task_id,
        "args": [ctx],  # what a retry of the step sends
        "kwargs": {"step": step},
        "chain": chain[:-1] or None,
        "retries": 0,
        "root_id": r.root_id or r.id,
        "parent_id": r.id,
        "delivery_info": r.delivery_info,
        "timelimit": r.timelimit,
        "hostname": r.hostname,
        "reply_to": r.reply_to,
        "correlation_id": task_id,
        "called_directly": False,
        "is_eager": False,
        _SINCE: since,
        _DEPTH: depth + 1,
    }
    return task.app.tasks[name], step, request
