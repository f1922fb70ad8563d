"""A test action that writes a record and then fails its first attempt, so the step is retried
after its write (and the write's event) committed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from circuits.actions import ActionContext, action
from circuits.errors import RetryableError
from integrations.records.actions import UpdateInput
from integrations.records.actions import update as data_update


class FlakyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead: str


class FlakyOutput(BaseModel):
    attempt: int


@action("test.records_flaky", queue="data")
def records_flaky(ctx: ActionContext, inp: FlakyInput) -> FlakyOutput:
    """Set the lead's score to the attempt number through data.update; fail the first attempt after it."""
    data_update(ctx, UpdateInput.model_validate({"object": "lead", "id": inp.lead, "set": {"score": ctx.attempt}}))
    if ctx.attempt == 1:
        raise RetryableError("failing once after the write, on purpose")
    return FlakyOutput(attempt=ctx.attempt)
