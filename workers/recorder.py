"""Recording runs without slowing them: ledger records go to a Redis stream in the same
round trip as the step's idempotency marker; the ledger writer moves them to SQL in batches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis

LEDGER_STREAM = "circuit:ledger"
ACTIVE = "circuit:active"  # run id -> deadline for progress; see workers.progress
DONE_TTL_S = 7 * 24 * 3600


def done_key(run_id: str) -> str:
    """Hash of step id -> output JSON for steps of ``run_id`` that succeeded, and ``__end__`` -> status."""
    return f"circuit:done:{run_id}"


def open_run(pipe: redis.client.Pipeline, run_id: str) -> None:
    """Create the run's done hash with its TTL once, so steps need not refresh it."""
    pipe.hset(done_key(run_id), "__run__", "1")
    pipe.expire(done_key(run_id), DONE_TTL_S)


def failed_key(run_id: str) -> str:
    return f"circuit:failed:{run_id}"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


END_FIELD = "__end__"
STEPS_FIELD = "__steps__"  # step executions of the run (raised by workers.claims)
TOKENS_FIELD = "__tokens__"  # LLM tokens the run's steps used (raised by step_done)
STARTED = "circuit:runs:started"  # run id -> acceptance time, for the duration governor


def add_records(pipe: redis.client.Pipeline, records: list[dict[str, Any]]) -> None:
    """Queue ledger records on ``pipe``; a run's end is also marked in its done hash (read by waiters)."""
    for rec in records:
        pipe.xadd(LEDGER_STREAM, {"r": dumps(rec)})
        if rec["k"] == "run_end" and rec["status"] != "running":
            pipe.hset(done_key(rec["run_id"]), END_FIELD, rec["status"])
            pipe.zrem(ACTIVE, rec["run_id"])
            pipe.zrem(STARTED, rec["run_id"])


def write(r: redis.Redis, records: list[dict[str, Any]]) -> None:
    """Append ledger records in one round trip."""
    pipe = r.pipeline(transaction=False)
    add_records(pipe, records)
    pipe.execute()


def step_done(
    r: redis.Redis,
    run_id: str,
    step_key: str,
    output_json: str,
    records: list[dict[str, Any]],
    stall_s: float,
    tokens: int = 0,
    then: Callable[[redis.client.Pipeline], None] | None = None,
) -> None:
    """Mark a step done (for redelivery and resumes), free its lease, add the LLM ``tokens`` it used to the
    run's count, append its ledger records: one round trip, all or nothing (MULTI), so it can be repeated
    after a lost connection (such a repeat may count the tokens twice: a governor errs towards stopping).
    ``then(pipe)`` adds more to the same MULTI (what follows a join, see :mod:`workers.joins`)."""
    pipe = r.pipeline(transaction=True)
    pipe.hset(done_key(run_id), step_key, output_json)  # the hash's TTL was set when the run started
    if tokens:
        pipe.hincrby(done_key(run_id), TOKENS_FIELD, tokens)
    pipe.delete(claim_key(run_id, step_key))
    pipe.zadd(ACTIVE, {run_id: time.time() + stall_s}, xx=True)
    add_records(pipe, records)
    if then is not None:
        then(pipe)
    pipe.execute()


def gathered_key(run_id: str, step_key: str) -> str:
    """Hash of batch offset -> JSON list of the outputs of a ``foreach`` step's items in that batch."""
    return f"circuit:gathered:{run_id}:{step_key}"


def claim_key(run_id: str, step_key: str) -> str:
    """The lease of a running step (see workers.claims)."""
    return f"circuit:claim:{run_id}:{step_key}"


def step_record(
    run_id: str,
    step_key: str,
    action: str | None,
    status: str,
    attempts: int,
    started: float,
    output: Any = None,
    error: str | None = None,
) -> dict[str, Any]:
    ended = None if status == "running" else time.time()  # "running": recorded when the step starts
    return {
        "k": "step",
        "run_id": run_id,
        "step_id": step_key,
        "action": action,
        "status": status,
        "attempts": attempts,
        "started": started,
        "ended": ended,
        "ms": None if ended is None else round((ended - started) * 1000, 3),
        "output": output,
        "error": error,
    }


def run_end(run_id: str, status: str, error: str | None = None) -> dict[str, Any]:
    return {"k": "run_end", "run_id": run_id, "status": status, "at": time.time(), "error": error}
