"""Run control: retry a failed run from a step, cancel a run. The CLI and the HTTP API call these.

A retry starts the run's canvas again with its saved starting context. Steps that
succeeded return their stored outputs without running (:mod:`workers.claims`), so the
run goes on from the failed step; ``from_step`` forgets the outputs of that step and
of every step after it in the file, so they run again. A cancel is a flag in the
run's state that the next step to start honours; a step already running finishes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from circuits.compiler import walk
from circuits.errors import CircuitError, NotFoundError
from storage.ledger import list_runs
from workers import progress, recorder
from workers.claims import CANCEL_FIELD
from workers.runtime import Runtime

log = logging.getLogger(__name__)
RETRIES_FIELD = "__retries__"


class RunStateError(CircuitError):
    """The run is not in a state that allows this (retrying a running run, cancelling an ended one)."""


@dataclass
class Retried:
    run_id: str
    circuit: str
    forgotten: list[str]


def _state(rt: Runtime, run_id: str) -> tuple[dict[str, Any], str | None]:
    ctx = progress.saved_context(rt.redis, run_id)
    if ctx is None:
        raise NotFoundError(f"run {run_id!r} has no saved state (unknown, or older than its retention)")
    end = rt.redis.hget(recorder.done_key(run_id), recorder.END_FIELD)
    return ctx, end.decode() if end is not None else None


def _later_steps(rt: Runtime, circuit: str, from_step: str) -> list[str]:
    """``from_step`` and the ids of every step after it in the circuit file."""
    entry = rt.catalog.entries.get(circuit)
    if entry is None:
        raise NotFoundError(f"circuit {circuit!r} is not deployed")
    order = [s.id for s in walk(entry.circuit.steps) if s.id]
    if from_step not in order:
        raise NotFoundError(f"circuit {circuit!r} has no step {from_step!r}; its steps are {', '.join(order)}")
    return order[order.index(from_step) :]


def retry(rt: Runtime, run_id: str, from_step: str | None = None, force: bool = False) -> Retried:
    """Resume an ended run (failed or cancelled) from its failed step, or from ``from_step``."""
    ctx, end = _state(rt, run_id)
    circuit = ctx["run"]["circuit"]
    if end is None and not force:
        raise RunStateError(f"run {run_id} is still running; cancel it first or wait for it to end")
    if end == "succeeded" and from_step is None:
        raise RunStateError(f"run {run_id} succeeded; name a step with --from to run it again from there")
    entry = rt.catalog.entries.get(circuit)
    if entry is None:
        raise NotFoundError(f"circuit {circuit!r} is not deployed")
    key = recorder.done_key(run_id)
    again = set(_later_steps(rt, circuit, from_step)) if from_step else set()
    handlers = {s.id for s in walk(entry.circuit.on_failure) if s.id}  # they run again if the retry fails
    forgotten: list[str] = []
    for field in rt.redis.hkeys(key):
        name = field.decode()
        if not name.startswith("__") and name.rsplit(".", 1)[-1] in again | handlers:
            forgotten.append(name)
    pipe = rt.redis.pipeline(transaction=True)
    if forgotten:
        pipe.hdel(key, *forgotten)
    pipe.hdel(key, recorder.END_FIELD, CANCEL_FIELD, progress.RESUMES_FIELD)
    pipe.delete(recorder.failed_key(run_id))
    pipe.hincrby(key, RETRIES_FIELD, 1)
    pipe.zadd(progress.ACTIVE, {run_id: time.time() + rt.settings.stall_after_s})
    recorder.add_records(pipe, [recorder.run_end(run_id, "running")])
    pipe.execute()
    log.info("retrying run %s (%s)%s", run_id, circuit, f" from step {from_step}" if from_step else "")
    progress.launch(entry.canvas, ctx)
    return Retried(run_id, circuit, sorted(set(forgotten) - handlers))


def retry_failed(
    rt: Runtime, engine: Any, circuit: str | None, since: datetime, until: datetime | None = None, limit: int = 1000
) -> list[Retried]:
    """Retry every failed run of ``circuit`` (or of all circuits) started in the window."""
    runs = list_runs(engine, limit=limit, status="failed", circuit=circuit, since=since, until=until)
    out = []
    for run in runs:
        try:
            out.append(retry(rt, run["id"]))
        except (NotFoundError, RunStateError) as exc:
            log.warning("not retrying %s: %s", run["id"], exc)
    return out


def cancel(rt: Runtime, run_id: str) -> str:
    """Ask a run to stop at its next step; returns what happened (``cancelling`` or the end it already had)."""
    _, end = _state(rt, run_id)
    if end is not None:
        raise RunStateError(f"run {run_id} already ended: {end}")
    pipe = rt.redis.pipeline(transaction=True)
    pipe.hset(recorder.done_key(run_id), CANCEL_FIELD, str(time.time()))
    # let the watchdog end it soon if no step is running to notice the flag
    pipe.zadd(progress.ACTIVE, {run_id: time.time() + rt.settings.step_lease_s}, xx=True)
    pipe.execute()
    log.info("run %s: cancel requested", run_id)
    return "cancelling"
