"""What a circuit is: a trigger plus steps. One model, two front ends (YAML and Python).

Step kinds are told apart by their key: ``action``, ``parallel``, ``if``, ``foreach``.
Everything here is plain data; checking it against the action registry is
:mod:`circuits.validate`, turning it into Celery canvas is :mod:`circuits.compiler`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from circuits.rates import RATE_PATTERN, parse_rate

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
EVENT_PATTERN = re.compile(r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Model):
    """Retries of one step: exponential backoff ``backoff_s * 2**n`` capped, with full jitter."""

    max: int = Field(0, ge=0, le=50, description="Retries after the first attempt.")
    backoff_s: float = Field(1.0, gt=0, le=3600)
    backoff_max_s: float = Field(300.0, gt=0, le=86400)
    jitter: bool = True


class ActionStep(_Model):
    """Run one action with inputs templated from the event and earlier outputs."""

    id: str | None = Field(None, pattern=ID_PATTERN)
    action: str = Field(min_length=1)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(None, gt=0, le=86400)
    rate_limit: str | None = Field(
        None,
        description="Calls of this action allowed across all workers, evenly spaced, e.g. '1/s', '10/m', "
        "'100/h per tenant'; overrides the action's own rate_limit.",
        json_schema_extra={"pattern": RATE_PATTERN},
    )

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value


class ParallelStep(_Model):
    """Run branches at once and join; a branch is a step or a list of steps run in sequence."""

    id: str | None = Field(None, pattern=ID_PATTERN)
    parallel: list[Step | list[Step]] = Field(min_length=1)


class IfStep(_Model):
    """Pick ``then`` or ``else`` at run time by a condition."""

    id: str | None = Field(None, pattern=ID_PATTERN)
    if_: str = Field(alias="if", min_length=1)
    then: list[Step] = Field(min_length=1)
    else_: list[Step] = Field(default_factory=list, alias="else")


class ForeachStep(_Model):
    """Run ``do`` once per item of a list, ``concurrency`` at a time; outputs gather in a list."""

    id: str = Field(pattern=ID_PATTERN)
    foreach: str = Field(min_length=1, description="Expression giving the list, e.g. event.data.contacts")
    do: list[Step] = Field(min_length=1)
    concurrency: int = Field(10, ge=1, le=100)
    max_items: int | None = Field(None, ge=1)


class WaitFor(_Model):
    """Which event a run waits for: its type, and how an arriving event is matched to this run."""

    event: str = Field(min_length=1, description="Event type to wait for, e.g. lead.replied")
    match: str = Field("event.subject", min_length=1, description="Expression over the ARRIVING event giving its key")
    equals: str | None = Field(
        None,
        description="Template in the run's scope giving the key to wait for; unset = `match` over the run's event",
    )
    timeout_s: float = Field(gt=0, le=366 * 86400, description="Give up waiting after this long (seconds)")

    @field_validator("event")
    @classmethod
    def _type(cls, value: str) -> str:
        return _event_type(value)


class WaitForStep(_Model):
    """Pause the run until a matching event arrives or the timeout passes; no worker is held meanwhile.

    The step's output is ``{"timed_out": bool, "event": {...} | None}``; then ``on_event`` or
    ``on_timeout`` runs, with the arriving event in scope as ``steps.<id>.event``.
    """

    id: str = Field(pattern=ID_PATTERN)
    wait_for: WaitFor
    on_event: list[Step] = Field(default_factory=list)
    on_timeout: list[Step] = Field(default_factory=list)


class CallStep(_Model):
    """Run another circuit as a child run and continue with its result (or fail with its error)."""

    id: str | None = Field(None, pattern=ID_PATTERN)
    call: str = Field(pattern=NAME_PATTERN, description="Name of the circuit to run")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="The child's event data")
    timeout_s: float = Field(86400.0, gt=0, le=366 * 86400, description="Fail if the child has not ended by then")


_KINDS: tuple[str, ...] = ("action", "parallel", "if", "foreach", "wait_for", "call")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in _KINDS:
            if key in value:
                return key
        return None
    kinds: dict[type, str] = {
        ActionStep: "action",
        ParallelStep: "parallel",
        IfStep: "if",
        ForeachStep: "foreach",
        WaitForStep: "wait_for",
        CallStep: "call",
    }
    return kinds.get(type(value))


Step = Annotated[
    Annotated[ActionStep, Tag("action")]
    | Annotated[ParallelStep, Tag("parallel")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[ForeachStep, Tag("foreach")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[CallStep, Tag("call")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs one of the keys: " + ", ".join(_KINDS),
    ),
]


class Concurrency(_Model):
    """At most ``limit`` runs of this circuit at once per value of ``key``; later runs wait in order."""

    key: str = Field(
        min_length=1, description="Expression over the event giving the key, e.g. event.subject or event.data.account"
    )
    limit: int = Field(1, ge=1, le=10000, description="Runs at once per key; the rest queue first in, first out.")


class Threshold(_Model):
    """Edge-triggered: fire when ``value`` crosses ``level`` for a key, once per crossing."""

    value: str = Field(min_length=1, description="Expression over the event, e.g. event.data.score")
    level: float = Field(description="The level to cross, e.g. 80")
    direction: Literal["up", "down"] = Field("up", description="up: from below to at or above; down: the reverse")


class Count(_Model):
    """Fire when ``at_least`` matching events for one key arrive within ``within_s``; once per window."""

    at_least: int = Field(ge=2, le=1000)
    within_s: float = Field(gt=0, le=366 * 86400)


class Absence(_Model):
    """Fire when ``expect`` did not follow ``after`` for the same key within ``within_s``."""

    after: str = Field(description="Event type that starts the clock, e.g. email.sent")
    expect: str = Field(description="Event type that stops it, e.g. lead.replied")
    within_s: float = Field(gt=0, le=366 * 86400)

    @field_validator("after", "expect")
    @classmethod
    def _type(cls, value: str) -> str:
        return _event_type(value)


def _event_type(value: str) -> str:
    if "*" in value or not EVENT_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an event type like lead.replied (no wildcards)")
    return value


#: What starts a circuit: one of these keys in its trigger.
SOURCES = ("event", "schedule", "all_of", "any_of", "sequence", "absence")


class Trigger(_Model):
    """When a circuit runs: on an event type (wildcards allowed), on a cron schedule, or when a
    pattern of events for one key is seen (threshold, count, all_of, any_of, sequence, absence)."""

    event: str | None = Field(None, description="Event type, e.g. lead.created or lead.*")
    schedule: str | None = Field(None, description="Cron line for Celery beat, e.g. '0 2 * * *'")
    when: str | None = Field(None, description="Condition over the event, e.g. event.data.score > 50")
    priority: int = Field(5, ge=0, le=9, description="0 lowest, 9 highest")
    concurrency: Concurrency | None = Field(
        None, description="Limit runs at once per key (a lead, an account), across all workers."
    )
    threshold: Threshold | None = Field(None, description="With event: fire when a value crosses a level")
    count: Count | None = Field(None, description="With event: fire on N events for one key within a window")
    all_of: list[str] | None = Field(None, min_length=2, description="Every one of these event types, any order")
    any_of: list[str] | None = Field(None, min_length=2, description="The first of these event types per window")
    sequence: list[str] | None = Field(None, min_length=2, description="These event types in this order")
    within_s: float | None = Field(None, gt=0, le=366 * 86400, description="Window of all_of, any_of, sequence")
    absence: Absence | None = Field(None, description="An expected event did not come in time")
    key: str = Field(
        "event.subject", min_length=1, description="Expression over the event giving the key the pattern is kept per"
    )

    @field_validator("event")
    @classmethod
    def _event_pattern(cls, value: str | None) -> str | None:
        if value is not None and not EVENT_PATTERN.match(value):
            raise ValueError(f"{value!r} is not an event type pattern like lead.created or lead.*")
        return value

    @field_validator("all_of", "any_of", "sequence")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return [_event_type(v) for v in value] if value is not None else None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("@every"):  # a fixed interval, e.g. "@every 30s" (s, m or h): beat_schedule.every
            found = re.fullmatch(r"@every\s+([1-9]\d*)([smh])", value.strip())
            if not found:
                raise ValueError(f"{value!r} is not an interval like '@every 30s', '@every 5m' or '@every 1h'")
            return value
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron line of five fields (minute hour day month weekday)")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Trigger:
        given = [k for k in SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a trigger needs exactly one of {', '.join(SOURCES)}; it has {', '.join(given) or 'none'}"
            )
        if (self.threshold or self.count) and self.event is None:
            raise ValueError("threshold and count watch the events named by 'event'")
        if self.threshold and self.count:
            raise ValueError("a trigger has either threshold or count, not both")
        if (self.all_of or self.any_of or self.sequence) and self.within_s is None:
            raise ValueError("all_of, any_of and sequence need a window: within_s")
        return self

    @property
    def kind(self) -> str:
        """event, schedule, threshold, count, all_of, any_of, sequence or absence."""
        for name in ("threshold", "count", "all_of", "any_of", "sequence", "absence", "schedule"):
            if getattr(self, name) is not None:
                return name
        return "event"

    @property
    def stateful(self) -> bool:
        """Whether firing depends on earlier events (kept in Redis), not on one event alone."""
        return self.kind not in ("event", "schedule")

    def listens_to(self) -> list[str]:
        """The event type patterns this trigger reads."""
        if self.event:
            return [self.event]
        if self.absence:
            return [self.absence.after, self.absence.expect]
        return list(self.all_of or self.any_of or self.sequence or [])


def _assign(steps: list[Any], prefix: str) -> None:
    """Give every step without an id a stable one derived from its position."""
    for i, step in enumerate(steps, 1):
        if isinstance(step, list):
            _assign(step, f"{prefix}{i}_")
            continue
        if step.id is None:
            step.id = f"{prefix}{i}"
        if isinstance(step, ParallelStep):
            for j, branch in enumerate(step.parallel, 1):
                _assign(branch if isinstance(branch, list) else [branch], f"{step.id}_b{j}_")
        elif isinstance(step, IfStep):
            _assign(step.then, f"{step.id}_then")
            _assign(step.else_, f"{step.id}_else")
        elif isinstance(step, ForeachStep):
            _assign(step.do, f"{step.id}_do")
        elif isinstance(step, WaitForStep):
            _assign(step.on_event, f"{step.id}_event")
            _assign(step.on_timeout, f"{step.id}_timeout")


class Circuit(_Model):
    """A trigger plus steps, with steps to run if the circuit fails."""

    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    version: int = Field(1, ge=1)
    description: str = ""
    trigger: Trigger
    vars: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    on_failure: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids(self) -> Circuit:
        _assign(self.steps, "step")
        _assign(self.on_failure, "on_failure")
        return self

    @property
    def digest(self) -> str:
        """Short content hash, so the ledger can tell edits of the same version apart."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


for _cls in (ParallelStep, IfStep, ForeachStep, WaitForStep, Circuit):
    _cls.model_rebuild()

AnyStep = ActionStep | ParallelStep | IfStep | ForeachStep | WaitForStep | CallStep
