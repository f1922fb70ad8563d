"""The chaos suite's test action: it counts its own executions, per (run, step).

The counts live in a Redis of their own (``CHAOS_EFFECTS_URL``) that no fault touches,
so a step run twice shows as a count of 2 even across a restart of the engine's Redis.
"""

from __future__ import annotations

import os
import time

import redis
from pydantic import BaseModel, ConfigDict, Field

from circuits.actions import ActionContext, action

EFFECTS_KEY = "chaos:effects"
#: ``<run>:<step>|<pid>`` -> when that process made the effect: a duplicate's first execution can then
#: be matched with a kill (see :meth:`bench.chaos_lab.Lab.kills`)
EXECUTIONS_KEY = "chaos:executions"


class CountInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ms: float = Field(0, ge=0, le=10_000, description="Work to pretend to do before the effect, in ms.")


class CountOutput(BaseModel):
    count: int


def _effects() -> redis.Redis:
    return redis.Redis.from_url(os.environ["CHAOS_EFFECTS_URL"], socket_timeout=10)


@action("chaos.count", queue="core")
def count(ctx: ActionContext, inp: CountInput) -> CountOutput:
    """Sleep ``ms``, then add one to this (run, step)'s execution count.

    The effect comes at the end of the work, as a commit would: a count of 2 means a
    step that had finished its work ran again, not one that was cut short and retried.
    """
    time.sleep(inp.ms / 1000)
    effects = ctx.resource("chaos.effects", _effects)
    field = f"{ctx.run_id}:{ctx.step_id}"
    pipe = effects.pipeline(transaction=True)  # the count and who made it, together
    pipe.hset(EXECUTIONS_KEY, f"{field}|{os.getpid()}", repr(time.time()))
    pipe.hincrby(EFFECTS_KEY, field, 1)
    return CountOutput(count=int(pipe.execute()[-1]))
