"""Compile a circuit into Celery canvas. Builds signatures by task name; never imports the app.

* a list of steps is a ``chain``; the run context flows along it as the one argument;
* ``parallel`` is a ``chord`` of one chain per branch with a join that merges contexts;
* ``if`` is a ``circuit.branch`` task that replaces itself with the chosen chain at run time;
* ``foreach`` is a ``circuit.foreach`` task that replaces itself with chords of the body, a batch
  of ``concurrency`` items at a time.

The compiler returns a signature and does nothing else: no I/O, no ``apply_async``.
Every step's kwargs carry its id and ``final``: the step that ends the run records
the run's end, so no extra bookkeeping task is added to each run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from celery.canvas import Signature, chain, chord, group

from circuits.actions import ActionRegistry
from circuits.model import (
    ActionStep,
    AnyStep,
    CallStep,
    Circuit,
    ForeachStep,
    IfStep,
    ParallelStep,
    WaitForStep,
)

ACTION_TASK_PREFIX = "circuit.action."
JOIN_TASK = "circuit.join"
BRANCH_TASK = "circuit.branch"
FOREACH_TASK = "circuit.foreach"
FOREACH_JOIN_TASK = "circuit.foreach_join"
WAIT_TASK = "circuit.wait"
WAIT_FOR_TASK = "circuit.wait_for"
CALL_TASK = "circuit.call"
#: Actions that are durable timers run by the engine, not tasks holding a worker.
DURABLE_ACTIONS = {"core.wait": WAIT_TASK}
CONTROL_QUEUE = "core"
#: Seconds between a step's soft time limit (raises in the action) and the hard kill.
HARD_LIMIT_GRACE_S = 5.0


def task_name(action_name: str) -> str:
    """The Celery task that runs ``action_name``: one named task per action, visible in Flower."""
    return ACTION_TASK_PREFIX + action_name


class Compiler:
    """Turns the circuit model into signatures; the registry supplies queues and defaults."""

    def __init__(self, registry: ActionRegistry) -> None:
        self.registry = registry

    def circuit(self, circuit: Circuit) -> Signature:
        """The run's canvas; call ``.clone(args=(context,))`` and apply it to start a run."""
        return self.steps(circuit.steps, final=True)

    def on_failure(self, circuit: Circuit) -> Signature | None:
        return self.steps(circuit.on_failure, final=False) if circuit.on_failure else None

    def steps(self, steps: list[Any], *, final: bool) -> Signature:
        sigs = [self.step(s, final=final and i == len(steps) - 1) for i, s in enumerate(steps)]
        return chain(*sigs)

    def step(self, step: AnyStep | list[Any], *, final: bool) -> Signature:
        if isinstance(step, list):
            return self.steps(step, final=final)
        if isinstance(step, ActionStep):
            return self.action(step, final=final)
        if isinstance(step, ParallelStep):
            return self.parallel(step, final=final)
        if isinstance(step, IfStep):
            return self.branch(step, final=final)
        if isinstance(step, WaitForStep):
            return self.wait_for(step, final=final)
        if isinstance(step, CallStep):
            return self.control(CALL_TASK, {**step.model_dump(by_alias=True), "final": final})
        return self.foreach(step, final=final)

    def control(self, task: str, payload: dict[str, Any]) -> Signature:
        """A step the engine runs itself, on the control queue."""
        return Signature(task, kwargs={"step": payload}, options={"queue": CONTROL_QUEUE, "ignore_result": True})

    def wait_for(self, step: WaitForStep, *, final: bool) -> Signature:
        payload = {
            "id": step.id,
            "wait_for": step.wait_for.model_dump(),
            "then": dict(self.steps(step.on_event, final=final)) if step.on_event else None,
            "else": dict(self.steps(step.on_timeout, final=final)) if step.on_timeout else None,
            "final": final,
        }
        return self.control(WAIT_FOR_TASK, payload)

    def action(self, step: ActionStep, *, final: bool) -> Signature:
        spec = self.registry.get(step.action)
        if spec.name in DURABLE_ACTIONS:
            return self.control(DURABLE_ACTIONS[spec.name], {"id": step.id, "with": step.with_, "final": final})
        retry = step.retry.model_dump() if step.retry else {"max": spec.retries}
        payload = {"id": step.id, "with": step.with_, "retry": retry, "final": final}
        rate_limit = step.rate_limit or spec.rate_limit
        if rate_limit:
            payload["rate_limit"] = rate_limit  # the step enforces it, shared across workers
        options: dict[str, Any] = {"queue": spec.queue, "ignore_result": True}
        timeout = step.timeout_s or spec.timeout_s
        if timeout:
            options["soft_time_limit"] = timeout
            options["time_limit"] = timeout + HARD_LIMIT_GRACE_S
        return Signature(task_name(spec.name), kwargs={"step": payload}, options=options)

    def parallel(self, step: ParallelStep, *, final: bool) -> Signature:
        branches = [self.step(b, final=False) for b in step.parallel]
        payload = {"id": step.id, "final": final, "branches": len(branches)}  # counted by workers.joins
        join = Signature(JOIN_TASK, kwargs={"step": payload}, options={"queue": CONTROL_QUEUE})
        return chord(group(branches), join)

    def branch(self, step: IfStep, *, final: bool) -> Signature:
        payload = {
            "id": step.id,
            "if": step.if_,
            "then": dict(self.steps(step.then, final=final)),
            "else": dict(self.steps(step.else_, final=final)) if step.else_ else None,
            "final": final,
        }
        return Signature(BRANCH_TASK, kwargs={"step": payload}, options={"queue": CONTROL_QUEUE, "ignore_result": True})

    def foreach(self, step: ForeachStep, *, final: bool) -> Signature:
        payload = {
            "id": step.id,
            "foreach": step.foreach,
            "do": dict(self.steps(step.do, final=False)),
            "body_ids": sorted(step_ids(step.do)),
            "concurrency": step.concurrency,
            "max_items": step.max_items,
            "final": final,
        }
        return Signature(
            FOREACH_TASK, kwargs={"step": payload}, options={"queue": CONTROL_QUEUE, "ignore_result": True}
        )


def walk(steps: list[Any]) -> Iterator[AnyStep]:
    """``steps`` and every step nested in them, in the order they appear in the file."""
    for step in steps:
        if isinstance(step, list):
            yield from walk(step)
            continue
        yield step
        if isinstance(step, ParallelStep):
            yield from walk(step.parallel)
        elif isinstance(step, IfStep):
            yield from walk(step.then)
            yield from walk(step.else_)
        elif isinstance(step, ForeachStep):
            yield from walk(step.do)
        elif isinstance(step, WaitForStep):
            yield from walk(step.on_event)
            yield from walk(step.on_timeout)


def step_ids(steps: list[Any]) -> set[str]:
    """Ids of ``steps`` and of every step nested in them."""
    return {s.id for s in walk(steps) if s.id}


def describe(sig: Signature | dict[str, Any], indent: int = 0) -> str:
    """A readable outline of a compiled canvas (for ``circuits show`` and for tests)."""
    sig = Signature.from_dict(sig) if isinstance(sig, dict) else sig
    pad = "  " * indent
    task = sig.get("task")
    if task == "celery.chain":
        return "\n".join([f"{pad}chain"] + [describe(t, indent + 1) for t in sig.tasks])
    if task == "celery.chord":
        header = [describe(t, indent + 2) for t in sig.tasks]
        return "\n".join([f"{pad}chord", f"{pad}  header"] + header + [f"{pad}  body", describe(sig.body, indent + 2)])
    if task == "celery.group":
        return "\n".join([f"{pad}group"] + [describe(t, indent + 1) for t in sig.tasks])
    step = sig.kwargs.get("step", {})
    return f"{pad}{task} [{step.get('id')}] queue={sig.options.get('queue')}"


def bind(sig: Signature | dict[str, Any], *args: Any, app: Any = None) -> Signature:
    """A copy of ``sig`` whose first task(s) receive ``args``.

    ``chain.clone(args=...)`` does not pass arguments on to the chain's first task,
    so this walks the canvas: a chain binds its first element, a chord or group
    binds every header task.
    """
    sig = Signature.from_dict(sig, app=app) if isinstance(sig, dict) else sig
    task = sig.get("task")
    if task == "celery.chain":
        out = sig.clone()
        out.tasks[0] = bind(out.tasks[0], *args, app=app)
        return out
    if task == "celery.chord":
        out = sig.clone()
        out.kwargs["header"] = group([bind(t, *args, app=app) for t in out.tasks])
        return out
    if task == "celery.group":
        return group([bind(t, *args, app=app) for t in sig.tasks])
    return sig.clone(args=args)
