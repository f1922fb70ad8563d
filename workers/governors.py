"""Governor limits of one run: step executions, duration and LLM tokens (issue 8).

Each is checked where it costs nothing extra: the step-start call (:mod:`workers.claims`)
returns the run's step count and tokens so far, the context carries the run's start, and
the LLM tokens a step used are added in the MULTI that records it
(:func:`workers.recorder.step_done`). A run over a limit fails at its next step with an
error naming the setting; the watchdog also fails runs older than the duration limit while
no step of theirs starts (:func:`overdue`). The per-tenant limit of concurrent runs is a
concurrency slot per tenant (:func:`workers.limits.admit_tenant`).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from circuits.settings import Settings
from workers.recorder import STARTED

__all__ = ["STARTED", "duration_error", "exceeded", "overdue", "tokens_of"]


def tokens_of(output: Any) -> int:
    """The LLM tokens an action's output reports in ``usage`` (input + output), else 0."""
    usage = output.get("usage") if isinstance(output, dict) else None
    if not isinstance(usage, dict):
        return 0
    total = 0
    for name in ("input_tokens", "output_tokens"):
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


def duration_error(s: Settings, started_at: float | None, now: float | None = None) -> str | None:
    limit = s.governor_max_duration_s
    if limit is None or started_at is None:
        return None
    age = (now or time.time()) - float(started_at)
    if age <= limit:
        return None
    return f"run exceeded CIRCUIT_GOVERNOR_MAX_DURATION_S={limit:g} (running for {age:.0f}s)"


def exceeded(s: Settings, ctx: dict[str, Any], steps: int, tokens: int) -> str | None:
    """Why a step that starts now must fail its run, or None."""
    if s.governor_max_steps is not None and steps > s.governor_max_steps:
        return f"run exceeded CIRCUIT_GOVERNOR_MAX_STEPS={s.governor_max_steps}"
    if s.governor_max_llm_tokens is not None and tokens > s.governor_max_llm_tokens:
        return f"run exceeded CIRCUIT_GOVERNOR_MAX_LLM_TOKENS={s.governor_max_llm_tokens} ({tokens} tokens used)"
    return duration_error(s, ctx["run"].get("started_at"))


def overdue(r: redis.Redis, s: Settings, batch: int = 200) -> list[str]:
    """Ids of unended runs accepted longer ago than the duration limit (oldest first)."""
    if s.governor_max_duration_s is None:
        return []
    ids = r.zrangebyscore(STARTED, "-inf", time.time() - s.governor_max_duration_s, start=0, num=batch)
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
