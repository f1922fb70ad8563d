"""Check a circuit against the actions a worker has: everything ``circuits validate`` reports.

Structural problems (missing keys, wrong types) are caught by the loader; this
module finds what needs the registry or the whole circuit: unknown actions,
inputs that do not fit an action's typed input, bad expressions, references to
steps that do not exist (or have not run yet at that point), duplicate ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from circuits.actions import ActionRegistry
from circuits.errors import DefinitionError, ExpressionError
from circuits.expressions import check, check_value, is_template
from circuits.loader import Source
from circuits.model import ActionStep, AnyStep, CallStep, Circuit, ForeachStep, IfStep, ParallelStep, WaitForStep

Path_ = tuple[str | int, ...]


@dataclass
class _Checker:
    registry: ActionRegistry
    source: Source
    errors: list[DefinitionError] = field(default_factory=list)
    ids: dict[str, Path_] = field(default_factory=dict)

    def fail(self, message: str, path: Path_) -> None:
        where = ".".join(str(p) for p in path)
        self.errors.append(self.source.error(f"{where}: {message}", path))

    def refs(self, refs: Iterable[str], available: set[str], path: Path_) -> None:
        for ref in sorted(set(refs)):
            if ref not in self.ids:
                self.fail(f"refers to step {ref!r}, which does not exist", path)
            elif ref not in available:
                self.fail(f"refers to step {ref!r}, which has not run at this point", path)

    def expression(self, source: str, path: Path_, available: set[str], names: frozenset[str]) -> None:
        try:
            found = check(source, names=names)
        except ExpressionError as exc:
            self.fail(exc.message, path)
            return
        self.refs(found, available, path)

    def template(self, value: Any, path: Path_, available: set[str], scope: frozenset[str]) -> None:
        try:
            self.refs(check_value(value, scope), available, path)
        except ExpressionError as exc:
            self.fail(exc.message, path)

    def collect_ids(self, steps: list[Any], path: Path_) -> None:
        for i, step in enumerate(steps):
            here = path + (i,)
            if isinstance(step, list):
                self.collect_ids(step, path + (i,))
                continue
            if step.id in self.ids:
                first = self.source.line_of(self.ids[step.id])
                self.fail(f"duplicate step id {step.id!r} (first used at line {first})", here + ("id",))
            else:
                self.ids[step.id] = here
            for key, children in _children(step):
                self.collect_ids(children, here + key)

    def steps(self, steps: list[Any], path: Path_, available: set[str], scope: frozenset[str]) -> set[str]:
        """Check steps run in sequence; return the ids available after them."""
        available = set(available)
        for i, step in enumerate(steps):
            available |= self.step(step, path + (i,), available, scope)
        return available

    def step(self, step: AnyStep | list[Any], path: Path_, available: set[str], scope: frozenset[str]) -> set[str]:
        if isinstance(step, list):
            return self.steps(step, path, available, scope)
        if isinstance(step, ActionStep):
            self.action(step, path, available, scope)
            return available | {str(step.id)}
        if isinstance(step, ParallelStep):
            out = set(available)
            for j, branch in enumerate(step.parallel):
                out |= self.step(branch, path + ("parallel", j), available, scope)
            return out | {str(step.id)}
        if isinstance(step, IfStep):
            self.expression(step.if_, path + ("if",), available, scope)
            then = self.steps(step.then, path + ("then",), available, scope)
            other = self.steps(step.else_, path + ("else",), available, scope)
            return then | other | {str(step.id)}
        if isinstance(step, WaitForStep):
            self.expression(step.wait_for.match, path + ("wait_for", "match"), set(), frozenset({"event"}))
            if step.wait_for.equals is not None:
                self.template(step.wait_for.equals, path + ("wait_for", "equals"), available, scope)
            mine = available | {step.id}
            got = self.steps(step.on_event, path + ("on_event",), mine, scope)
            timed_out = self.steps(step.on_timeout, path + ("on_timeout",), mine, scope)
            return got | timed_out | mine
        if isinstance(step, CallStep):
            for key, value in step.with_.items():
                self.template(value, path + ("with", key), available, scope)
            return available | {str(step.id)}
        assert isinstance(step, ForeachStep)
        self.expression(step.foreach, path + ("foreach",), available, scope)
        self.steps(step.do, path + ("do",), available, scope | {"item", "index"})
        return available | {step.id}

    def action(self, step: ActionStep, path: Path_, available: set[str], scope: frozenset[str]) -> None:
        try:
            spec = self.registry.get(step.action)
        except DefinitionError as exc:
            self.fail(exc.message, path + ("action",))
            spec = None
        for key, value in step.with_.items():
            try:
                self.refs(check_value(value, scope), available, path + ("with", key))
            except ExpressionError as exc:
                self.fail(exc.message, path + ("with", key))
        if spec is None:
            return
        model = spec.input_model
        known = {name for name in model.model_fields} | {f.alias for f in model.model_fields.values() if f.alias}
        for key in step.with_:
            if key not in known and model.model_config.get("extra") != "allow":
                self.fail(
                    f"{step.action} has no input {key!r}; it takes {', '.join(sorted(known)) or 'none'}",
                    path + ("with", key),
                )
        literal = {k: v for k, v in step.with_.items() if not _has_template(v)}
        templated = {k for k in step.with_ if k not in literal}
        try:
            model.model_validate({**literal, **{k: _Placeholder() for k in templated}})
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else None
                if field in templated or (err["type"] == "extra_forbidden"):
                    continue
                where = path + ("with",) + tuple(err["loc"])
                self.fail(f"input does not fit {step.action}: {err['msg']}", where)


class _Placeholder:
    """Stands in for a templated input whose value is only known at run time."""


def _has_template(value: Any) -> bool:
    if is_template(value):
        return True
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def _children(step: AnyStep) -> list[tuple[Path_, list[Any]]]:
    if isinstance(step, ParallelStep):
        return [(("parallel", j), b if isinstance(b, list) else [b]) for j, b in enumerate(step.parallel)]
    if isinstance(step, IfStep):
        return [(("then",), step.then), (("else",), step.else_)]
    if isinstance(step, ForeachStep):
        return [(("do",), step.do)]
    if isinstance(step, WaitForStep):
        return [(("on_event",), step.on_event), (("on_timeout",), step.on_timeout)]
    return []


def validate(circuit: Circuit, registry: ActionRegistry, source: Source | None = None) -> list[DefinitionError]:
    """Every problem in ``circuit``, each with file and line where known; empty when it is fine."""
    checker = _Checker(registry, source or Source())
    checker.collect_ids(circuit.steps, ("steps",))
    checker.collect_ids(circuit.on_failure, ("on_failure",))
    if circuit.trigger.when:
        checker.expression(circuit.trigger.when, ("trigger", "when"), set(), frozenset({"event"}))
    trigger = circuit.trigger
    if trigger.stateful:
        checker.expression(trigger.key, ("trigger", "key"), set(), frozenset({"event"}))
    if trigger.threshold:
        checker.expression(trigger.threshold.value, ("trigger", "threshold", "value"), set(), frozenset({"event"}))
    if circuit.trigger.concurrency:
        key = circuit.trigger.concurrency.key
        checker.expression(key, ("trigger", "concurrency", "key"), set(), frozenset({"event"}))
    scope = frozenset({"event", "steps", "vars", "run"})
    available = checker.steps(circuit.steps, ("steps",), set(), scope)
    checker.steps(circuit.on_failure, ("on_failure",), available | set(checker.ids), scope | {"error"})
    return checker.errors
