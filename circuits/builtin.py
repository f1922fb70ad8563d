"""Core actions: enough to exercise the engine (set, log, sleep, fail on purpose, no-op) and durable waits."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from circuits.actions import ActionContext, action
from circuits.errors import PermanentError, RetryableError


class Empty(BaseModel):
    """No fields: for actions that take or return nothing."""

    model_config = ConfigDict(extra="forbid")


class SetInput(BaseModel):
    model_config = ConfigDict(extra="allow")


class SetOutput(BaseModel):
    model_config = ConfigDict(extra="allow")


@action("core.set", queue="core", side_effects=False)
def set_values(ctx: ActionContext, inp: SetInput) -> SetOutput:
    """Output the given values, so later steps can read them as ``steps.<id>.<name>``."""
    return SetOutput(**(inp.model_extra or {}))


class LogInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    level: str = Field("info", pattern="^(debug|info|warning|error)$")
    fields: dict[str, Any] = Field(default_factory=dict)


class LogOutput(BaseModel):
    logged: str


@action("core.log", queue="core")
def log(ctx: ActionContext, inp: LogInput) -> LogOutput:
    """Write a line to the worker log, tagged with run and step."""
    getattr(ctx.log, inp.level)("%s %s", inp.message, inp.fields or "")
    return LogOutput(logged=inp.message)


class SleepInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=3600)


class SleepOutput(BaseModel):
    slept_s: float


@action("core.sleep", queue="core")
def sleep(ctx: ActionContext, inp: SleepInput) -> SleepOutput:
    """Wait; useful for tests of timeouts and for pacing."""
    started = time.monotonic()
    time.sleep(inp.seconds)
    return SleepOutput(slept_s=round(time.monotonic() - started, 3))


class FailInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = "failed on purpose"
    permanent: bool = Field(False, description="Fail without retrying.")
    until_attempt: int | None = Field(
        None, ge=1, description="Fail on attempts before this one, then succeed (tests retry)."
    )


class FailOutput(BaseModel):
    attempt: int


@action("core.fail", queue="core")
def fail(ctx: ActionContext, inp: FailInput) -> FailOutput:
    """Fail on purpose: permanently, or transiently until a given attempt."""
    if inp.until_attempt is not None and ctx.attempt >= inp.until_attempt:
        return FailOutput(attempt=ctx.attempt)
    if inp.permanent:
        raise PermanentError(inp.message)
    raise RetryableError(f"{inp.message} (attempt {ctx.attempt})")


@action("core.noop", queue="core", side_effects=False)
def noop(ctx: ActionContext, inp: Empty) -> Empty:
    """Do nothing; the benchmark's unit of work."""
    return Empty()


class WaitInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float | None = Field(None, ge=0, le=366 * 86400, description="How long to wait: seconds to weeks.")
    until: datetime | None = Field(None, description="Or: wait until this time (ISO 8601; UTC when no zone).")

    @model_validator(mode="after")
    def _one(self) -> WaitInput:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("give exactly one of 'seconds' or 'until'")
        return self

    def wake_at(self, now: float) -> float:
        if self.until is not None:
            until = self.until if self.until.tzinfo else self.until.replace(tzinfo=UTC)
            return until.timestamp()
        return now + float(self.seconds or 0)


class WaitOutput(BaseModel):
    waited_s: float


@action("core.wait", queue="core", side_effects=False)
def wait(ctx: ActionContext, inp: WaitInput) -> WaitOutput:
    """Pause the run for a while without holding a worker: a durable timer kept by the engine.

    The compiler turns this step into the engine's ``circuit.wait`` task; called directly
    (a test, a dry run) it does not sleep and reports no wait.
    """
    return WaitOutput(waited_s=0.0)
