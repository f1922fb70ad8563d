"""What a circuit is: a trigger plus steps. One model, two front ends (YAML and Python).

Step kinds are told apart by their key: ``action``, ``parallel``, ``if``, ``foreach``.
Everything here is plain data; checking it against the action registry is
:mod:`circuits.validate`, turning it into Celery canvas is :mod:`circuits.compiler`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

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


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("action", "parallel", "if", "foreach"):
            if key in value:
                return key
        return None
    kinds: dict[type, str] = {ActionStep: "action", ParallelStep: "parallel", IfStep: "if", ForeachStep: "foreach"}
    return kinds.get(type(value))


Step = Annotated[
    Annotated[ActionStep, Tag("action")]
    | Annotated[ParallelStep, Tag("parallel")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[ForeachStep, Tag("foreach")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs one of the keys: action, parallel, if, foreach",
    ),
]


class Concurrency(_Model):
    """At most ``limit`` runs of this circuit at once per value of ``key``; later runs wait in order."""

    key: str = Field(
        min_length=1, description="Expression over the event giving the key, e.g. event.subject or event.data.account"
    )
    limit: int = Field(1, ge=1, le=10000, description="Runs at once per key; the rest queue first in, first out.")


class Trigger(_Model):
    """When a circuit runs: on an event type (wildcards allowed) or on a cron schedule."""

    event: str | None = Field(None, description="Event type, e.g. lead.created or lead.*")
    schedule: str | None = Field(None, description="Cron line for Celery beat, e.g. '0 2 * * *'")
    when: str | None = Field(None, description="Condition over the event, e.g. event.data.score > 50")
    priority: int = Field(5, ge=0, le=9, description="0 lowest, 9 highest")
    concurrency: Concurrency | None = Field(
        None, description="Limit runs at once per key (a lead, an account), across all workers."
    )

    @field_validator("event")
    @classmethod
    def _event_pattern(cls, value: str | None) -> str | None:
        if value is not None and not EVENT_PATTERN.match(value):
            raise ValueError(f"{value!r} is not an event type pattern like lead.created or lead.*")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron line of five fields (minute hour day month weekday)")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Trigger:
        if (self.event is None) == (self.schedule is None):
            raise ValueError("a trigger needs exactly one of 'event' or 'schedule'")
        return self


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


for _cls in (ParallelStep, IfStep, ForeachStep, Circuit):
    _cls.model_rebuild()

AnyStep = ActionStep | ParallelStep | IfStep | ForeachStep
