"""Every task message says which circuit, run and step it belongs to, and when it was sent.

A ``before_task_publish`` hook, so it covers every way a step's message is sent: the start
of a run, the next task of a chain (sent by Celery from inside the worker), a chord's join,
a retry and a ``Task.replace``. It sets:

* ``argsrepr`` and ``kwargsrepr``, which Flower shows and searches: the args are the run
  context (event data included), so they are replaced by a short label, and the kwargs by
  ``{'circuit': ..., 'run': ..., 'step': ..., 'action': ...}``; Flower's search
  ``kwargs:run=<run id>`` then lists one run's tasks;
* the headers ``circuit``, ``circuit_run`` and ``circuit_step`` (``task.request.circuit_run``
  in a task), and ``circuit_sent``: when the message was sent, so ``circuit-os status`` and the
  metrics can tell how long the oldest message of a queue has waited.
"""

from __future__ import annotations

import time
from typing import Any

from circuits.compiler import ACTION_TASK_PREFIX
from workers.context import step_key

SENT_HEADER = "circuit_sent"
#: What the engine's control tasks are, as a step's ``action`` in logs, traces and Flower.
CONTROL_KINDS = {
    "circuit.join": "parallel",
    "circuit.branch": "if",
    "circuit.foreach": "foreach",
    "circuit.foreach_join": "foreach",
    "circuit.wait": "core.wait",
    "circuit.wait_for": "wait_for",
    "circuit.call": "call",
}


def action_of(task_name: str) -> str | None:
    """The action a task runs (``core.set``), or the kind of control step (``if``), or None."""
    if task_name.startswith(ACTION_TASK_PREFIX):
        return task_name[len(ACTION_TASK_PREFIX) :]
    return CONTROL_KINDS.get(task_name)


def describe(task_name: str, args: Any, kwargs: Any) -> dict[str, Any] | None:
    """Circuit, run, step, action and tenant of a step task's arguments; None for other tasks."""
    ctx = args[0] if args else None
    if isinstance(ctx, list) and ctx:  # a join receives the contexts of its branches
        ctx = ctx[0]
    if not isinstance(ctx, dict):
        return None
    run = ctx.get("run")
    if not isinstance(run, dict):
        return None
    step = kwargs.get("step") if isinstance(kwargs, dict) else None
    step_id = step.get("id") if isinstance(step, dict) else None
    return {
        "circuit": run.get("circuit"),
        "run": run.get("id"),
        "step": step_key(ctx, step_id) if step_id else None,
        "action": action_of(task_name),
        "tenant": run.get("tenant"),
    }


def on_publish(sender: Any = None, body: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: label the message (see the module docstring)."""
    if headers is None:
        return
    headers[SENT_HEADER] = time.time()
    if not isinstance(body, (tuple, list)) or len(body) < 2:
        return
    about = describe(str(sender or headers.get("task") or ""), body[0], body[1])
    if about is None:
        return
    headers["circuit"], headers["circuit_run"], headers["circuit_step"] = about["circuit"], about["run"], about["step"]
    headers["argsrepr"] = f"(<context of run {about['run']}>,)"
    label = {k: about[k] for k in ("circuit", "run", "step", "action")}
    headers["kwargsrepr"] = repr(label)
