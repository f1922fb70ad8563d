"""Every task message says which circuit, run and step it belongs to, and when it was sent.

* ``argsrepr`` and ``kwargsrepr``, which Flower shows and searches, are set by
  :class:`LabelledAMQP` (the app's message builder) for every message of a step, however it is
  sent: the start of a run, the next task of a chain (sent by Celery from inside the worker), a
  chord's join, a retry, a ``Task.replace``. The args are the run context (event data included),
  so they become a short label, and the kwargs ``{'circuit': ..., 'run': ..., 'step': ...,
  'action': ...}``: Flower's search ``kwargs:run=<run id>`` lists one run's tasks. This is done
  before Celery would ``saferepr`` the whole context, so the ``task-sent`` event carries the
  label too, and it costs less than the repr it replaces.
* a ``before_task_publish`` hook (:func:`on_publish`) adds the headers ``circuit``,
  ``circuit_run`` and ``circuit_step`` (``task.request.circuit_run`` in a task), and
  ``circuit_sent``: when the message was sent, so ``circuit-os status`` and the metrics can tell
  how long the oldest message of a queue has waited.

A replaced task (``if``, ``foreach``) hands its task id to the last task of its replacement
(Celery's ``Task.replace``), so Flower lists the two as one entry.
"""

from __future__ import annotations

import time
from typing import Any

from celery.app.amqp import AMQP

from circuits.compiler import ACTION_TASK_PREFIX, FOREACH_JOIN_TASK
from workers.context import step_key

SENT_HEADER = "circuit_sent"
#: What the engine's control tasks are, as a step's ``action`` in logs, traces and Flower.
CONTROL_KINDS = {
    "circuit.join": "parallel",
    "circuit.branch": "if",
    "circuit.foreach": "foreach",
    FOREACH_JOIN_TASK: "foreach",
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
    loop = ctx.get("loop")
    if task_name == FOREACH_JOIN_TASK and isinstance(loop, dict):
        ctx = {"loop": loop.get("outer")}  # it receives its items' contexts; the foreach is one loop out
    return {
        "circuit": run.get("circuit"),
        "run": run.get("id"),
        "step": step_key(ctx, step_id) if step_id else None,
        "action": action_of(task_name),
        "tenant": run.get("tenant"),
    }


def label(about: dict[str, Any]) -> tuple[str, str]:
    """``(argsrepr, kwargsrepr)`` of a step's message."""
    return f"(<context of run {about['run']}>,)", repr({k: about[k] for k in ("circuit", "run", "step", "action")})


def report(
    app: Any,
    task_name: str,
    task_id: str | None,
    ctx: dict[str, Any],
    kwargs: dict[str, Any],
    started: float,
    outcome: str | None = "task-succeeded",
    **fields: Any,
) -> None:
    """Tell monitors (Flower) about a step made inside another step's task as if it had run as a task of
    its own: received, then ``outcome`` (none for a step that stopped quietly). Under
    :func:`workers.broker.riding`, the events ride on the caller's pipeline."""
    about = describe(task_name, (ctx,), kwargs)
    if not task_id or about is None or not app.conf.worker_send_task_events:
        return
    argsrepr, kwargsrepr = label(about)
    with app.events.default_dispatcher() as events:
        events.send("task-received", uuid=task_id, name=task_name, args=argsrepr, kwargs=kwargsrepr, retries=0)
        if outcome:
            events.send(outcome, uuid=task_id, runtime=time.time() - started, **fields)


class LabelledAMQP(AMQP):  # type: ignore[misc]
    """Celery's message builder, with the label of a step's message as its argsrepr and kwargsrepr."""

    def as_task_v2(
        self, task_id: str, name: str, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any
    ) -> Any:
        if options.get("argsrepr") is None and options.get("kwargsrepr") is None:
            about = describe(name, args or (), kwargs or {})
            if about is not None:
                options["argsrepr"], options["kwargsrepr"] = label(about)
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)


def on_publish(sender: Any = None, body: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: the sent time, and the circuit, run and step as headers."""
    if headers is None:
        return
    headers[SENT_HEADER] = time.time()
    if not isinstance(body, (tuple, list)) or len(body) < 2:
        return
    about = describe(str(sender or headers.get("task") or ""), body[0], body[1])
    if about is not None:
        headers["circuit"], headers["circuit_run"], headers["circuit_step"] = (
            about["circuit"],
            about["run"],
            about["step"],
        )
