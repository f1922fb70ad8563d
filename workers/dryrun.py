"""Walk a circuit's steps for one past event with side effects switched off.

An action with side effects is never called: its inputs are rendered with the event in
scope and checked against its input model, and its output stays unknown. Only actions
declared ``side_effects=False`` (they just compute) are called, so later steps can use
their outputs. Anything that needs an output that was not produced is reported as
"unknown (depends on step X)" rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from circuits.actions import ActionContext, ActionRegistry, Resources
from circuits.catalog import Entry
from circuits.compiler import step_ids
from circuits.events import Event
from circuits.expressions import check, check_value, evaluate, render
from circuits.model import ActionStep, ForeachStep, IfStep, ParallelStep
from workers.context import new_context, scope
from workers.ingest import run_id_for


@dataclass
class PlannedStep:
    """One step as the dry run saw it; ``depth`` is its nesting under parallel and if."""

    step: str
    kind: str
    depth: int
    status: str
    action: str | None = None
    inputs: dict[str, Any] | None = None
    output: Any = None
    expression: str | None = None
    items: int | None = None


@dataclass
class DryRun:
    """What one event's run would do: the steps walked, and where it would fail if it would."""

    event_id: str
    steps: list[PlannedStep] = field(default_factory=list)
    failed_at: str | None = None
    error: str | None = None

    @property
    def would_call(self) -> list[str]:
        return [s.action for s in self.steps if s.action and s.status.startswith("would call")]


class _Stop(Exception):
    """The real run would fail here; the walk ends."""


def _unknown(refs: set[str], unknown: set[str]) -> str | None:
    missing = sorted(refs & unknown)
    return f"unknown (depends on step {', '.join(missing)})" if missing else None


class _Walker:
    def __init__(self, registry: ActionRegistry, ctx: dict[str, Any], plan: DryRun, foreach_cap: int) -> None:
        self.registry = registry
        self.ctx = ctx
        self.plan = plan
        self.cap = foreach_cap
        self.unknown: set[str] = set()

    def fail(self, step: str, message: str) -> None:
        self.plan.failed_at, self.plan.error = step, message
        raise _Stop

    def steps(self, steps: list[Any], depth: int) -> None:
        for step in steps:
            if isinstance(step, list):
                self.steps(step, depth)
            elif isinstance(step, ActionStep):
                self.action(step, depth)
            elif isinstance(step, ParallelStep):
                self.plan.steps.append(PlannedStep(str(step.id), "parallel", depth, f"{len(step.parallel)} branches"))
                for branch in step.parallel:
                    self.steps(branch if isinstance(branch, list) else [branch], depth + 1)
                self.ctx["steps"][step.id] = {"branches": len(step.parallel)}
            elif isinstance(step, IfStep):
                self.branch(step, depth)
            else:
                self.foreach(step, depth)

    def action(self, step: ActionStep, depth: int) -> None:
        sid = str(step.id)
        spec = self.registry.get(step.action)
        inputs: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in step.with_.items():
            marker = _unknown(check_value(value), self.unknown)
            if marker:
                inputs[key] = marker
                unknown.append(key)
                continue
            try:
                inputs[key] = render(value, scope(self.ctx))
            except Exception as exc:  # noqa: BLE001 - the run would fail here; report, never crash
                self.plan.steps.append(PlannedStep(sid, "action", depth, "would fail", step.action, inputs))
                self.fail(sid, f"input {key!r}: {exc}")
        planned = PlannedStep(sid, "action", depth, "would call", step.action, inputs)
        self.plan.steps.append(planned)
        if unknown:
            planned.status = f"would call; inputs {', '.join(unknown)} unknown until then"
            self.unknown.add(sid)
            return
        try:
            spec.input_model.model_validate(inputs)
        except ValidationError as exc:
            err = exc.errors()[0]
            planned.status = "would fail"
            self.fail(sid, f"input does not fit {spec.name}: {'.'.join(map(str, err['loc']))}: {err['msg']}")
        if spec.side_effects:
            self.unknown.add(sid)
            return
        actx = ActionContext(
            run_id=self.ctx["run"]["id"],
            step_id=sid,
            circuit=self.ctx["run"]["circuit"],
            event=self.ctx["event"],
            resources=Resources(),
        )
        try:
            planned.output = spec.run(actx, inputs)
        except Exception as exc:  # noqa: BLE001 - a side-effect-free action failing is a finding
            planned.status = "would fail"
            self.fail(sid, f"{type(exc).__name__}: {exc}")
        planned.status = "called (side-effect-free)"
        self.ctx["steps"][sid] = planned.output

    def branch(self, step: IfStep, depth: int) -> None:
        sid = str(step.id)
        planned = PlannedStep(sid, "if", depth, "", expression=step.if_)
        self.plan.steps.append(planned)
        marker = _unknown(check(step.if_), self.unknown)
        if marker:
            planned.status = f"condition {marker}; neither branch walked"
            self.unknown |= {sid} | step_ids(step.then) | step_ids(step.else_)
            return
        try:
            value = bool(evaluate(step.if_, scope(self.ctx)))
        except Exception as exc:  # noqa: BLE001 - the run would fail here; report, never crash
            planned.status = "would fail"
            self.fail(sid, str(exc))
        chosen = step.then if value else step.else_
        taken = "then" if value else ("else" if chosen else "none")
        planned.status = f"condition {str(value).lower()}: {taken}"
        self.ctx["steps"][sid] = {"condition": value, "taken": taken}
        self.steps(chosen, depth + 1)

    def foreach(self, step: ForeachStep, depth: int) -> None:
        planned = PlannedStep(step.id, "foreach", depth, "", expression=step.foreach)
        self.plan.steps.append(planned)
        marker = _unknown(check(step.foreach), self.unknown)
        if marker:
            planned.status = f"items {marker}"
            self.unknown.add(step.id)
            return
        try:
            items = evaluate(step.foreach, scope(self.ctx))
        except Exception as exc:  # noqa: BLE001 - the run would fail here; report, never crash
            planned.status = "would fail"
            self.fail(step.id, str(exc))
        if not isinstance(items, (list, tuple)):
            planned.status = "would fail"
            self.fail(step.id, f"foreach needs a list, {step.foreach!r} gave {type(items).__name__}")
        cap = min(step.max_items or self.cap, self.cap)
        planned.items = len(items)
        if len(items) > cap:
            planned.status = "would fail"
            self.fail(step.id, f"{len(items)} items, over the limit of {cap}")
        planned.status = f"{len(items)} items; body not walked"
        if items:
            self.unknown.add(step.id)
        else:
            self.ctx["steps"][step.id] = []


def dry_run(
    entry: Entry, event: Event, event_ctx: dict[str, Any], registry: ActionRegistry, foreach_cap: int
) -> DryRun:
    """Walk ``entry``'s steps for ``event`` without calling any action that has side effects."""
    ctx = new_context(run_id_for(event, entry.name), entry.name, entry.version, event, event_ctx, entry.circuit.vars)
    plan = DryRun(event.id)
    try:
        _Walker(registry, ctx, plan, foreach_cap).steps(entry.circuit.steps, 0)
    except _Stop:
        pass
    return plan
