"""What happens when a run ends, whoever ends it: a step, a failure, a cancel, the watchdog.

Its per-key concurrency slot is freed (:mod:`workers.limits`), and a run started by a
``call`` step hands its result to the parent run and wakes it (:mod:`workers.durable`).
"""

from __future__ import annotations

import time
from typing import Any

from workers import limits, metrics, progress, recorder
from workers.runtime import Runtime

WAITING_FIELD = "__waiting__"


def result_field(step_key: str) -> str:
    return f"__result__:{step_key}"


def wake(rt: Runtime, run_id: str) -> bool:
    """Start a parked run again from its saved context (its finished steps are skipped)."""
    ctx = progress.saved_context(rt.redis, run_id)
    if ctx is None:
        return False
    entry = rt.catalog.entries.get(ctx["run"]["circuit"])
    if entry is None:
        return False
    pipe = rt.redis.pipeline(transaction=True)
    pipe.hdel(recorder.done_key(run_id), WAITING_FIELD)
    pipe.zadd(progress.ACTIVE, {run_id: time.time() + rt.settings.stall_after_s}, xx=True)
    pipe.execute()
    progress.launch(entry.canvas, ctx)
    return True


def run_ended(rt: Runtime, ctx: dict[str, Any], status: str, error: str | None = None) -> None:
    metrics.run_ended(ctx, status)
    limits.on_run_end(rt, ctx)
    parent = ctx["run"].get("parent")
    if not parent:
        return
    result = {"run_id": ctx["run"]["id"], "status": status, "error": error, "steps": ctx.get("steps", {})}
    text = recorder.dumps(result)
    if rt.redis.hsetnx(recorder.done_key(parent["run"]), result_field(parent["step"]), text):
        wake(rt, parent["run"])
