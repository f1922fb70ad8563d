"""Actions the engine tests run: they count their own executions in Redis, so a test can see
whether a step ran once, twice or not at all, and one of them fails until a gate opens."""

from __future__ import annotations

import redis
from pydantic import BaseModel, ConfigDict

from circuits.actions import ActionContext, action
from circuits.errors import PermanentError

EXECUTIONS = "test:executions"


class CountInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gate: str | None = None


class CountOutput(BaseModel):
    executions: int


def _redis(ctx: ActionContext) -> redis.Redis:
    return ctx.resource("test-redis", lambda: redis.Redis.from_url(ctx.settings.redis_url))


@action("test.count", queue="core")
def count(ctx: ActionContext, inp: CountInput) -> CountOutput:
    """Count this execution under ``run:step``; fail for good while the ``gate`` key is missing in Redis."""
    r = _redis(ctx)
    n = int(r.hincrby(EXECUTIONS, f"{ctx.run_id}:{ctx.step_id}", 1))
    if inp.gate is not None and not r.exists(inp.gate):
        raise PermanentError(f"gate {inp.gate} is closed")
    return CountOutput(executions=n)
