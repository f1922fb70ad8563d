"""Durable time: ``core.wait``, ``wait_for`` an event, and ``call`` of a child circuit.

None of them holds a worker or puts a long countdown into the broker (Celery hands ETA
tasks out again past the visibility timeout, celery #5935). A waiting step *parks* its
run: it notes what it waits for in the run's done hash, sets the run's deadline in
``circuit:active`` to its wake time, records the step as ``waiting`` and stops the chain.
The run is started again from its saved context when the time comes (the watchdog),
when a matching event arrives (:func:`deliver`, called by ingest) or when the child run
ends (:func:`workers.lifecycle.run_ended`); steps that succeeded are skipped, and the
waiting step now decides, once: its decision is stored like any step output.

A ``wait_for`` also looks back over recently arrived events of its type
(``CIRCUIT_WAIT_LOOKBACK_S``), so an event that came just before the wait began is not missed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from pydantic import ValidationError

from circuits.builtin import WaitInput
from circuits.compiler import bind
from circuits.errors import PermanentError
from circuits.events import Event
from circuits.expressions import evaluate, render
from workers import frames, lifecycle, progress, recorder, steps
from workers.context import scope, step_key, step_log, with_output
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)
RECENT_MAX = 1000


def _wake_field(key: str) -> str:
    return f"__wake__:{key}"


def _event_field(key: str) -> str:
    return f"__event__:{key}"


def recent_key(tenant: str, event_type: str) -> str:
    return f"circuit:recent:{tenant}:{event_type}"


def waiters_key(tenant: str, event_type: str, match: str, value: Any) -> str:
    digest = hashlib.sha256(f"{match}\x00{json.dumps(value, sort_keys=True, default=str)}".encode()).hexdigest()[:32]
    return f"circuit:waiters:{tenant}:{event_type}:{digest}"


def _decided(rt: Runtime, ctx: dict[str, Any], key: str) -> Any | None:
    stored = rt.redis.hget(recorder.done_key(ctx["run"]["id"]), key)
    return json.loads(stored) if stored is not None else None


def _wake_at(rt: Runtime, ctx: dict[str, Any], key: str, wake: float) -> float:
    """The step's wake time: set by its first execution, kept by every later one."""
    done = recorder.done_key(ctx["run"]["id"])
    rt.redis.hsetnx(done, _wake_field(key), repr(wake))
    return float(rt.redis.hget(done, _wake_field(key)) or wake)


def _park(rt: Runtime, ctx: dict[str, Any], key: str, kind: str, wake: float, why: str) -> None:
    run_id = ctx["run"]["id"]
    step_log(ctx, key).info("waiting (%s); no worker is held", why)
    pipe = rt.redis.pipeline(transaction=True)
    pipe.hset(recorder.done_key(run_id), lifecycle.WAITING_FIELD, key)
    pipe.zadd(progress.ACTIVE, {run_id: wake}, xx=True)
    recorder.add_records(
        pipe, [recorder.step_record(run_id, key, kind, "waiting", 1, time.time(), output={"why": why})]
    )
    pipe.execute()
    raise Ignore()


def _decide(
    rt: Runtime, ctx: dict[str, Any], step: dict[str, Any], key: str, kind: str, output: Any, final: bool
) -> Any:
    """Store the step's outcome once (a concurrent execution that lost keeps the winner's);
    ``final``: nothing follows it, so the run ends here."""
    run_id = ctx["run"]["id"]
    done = recorder.done_key(run_id)
    if not rt.redis.hsetnx(done, key, recorder.dumps(output)):
        return json.loads(rt.redis.hget(done, key) or "null")
    records = [recorder.step_record(run_id, key, kind, "succeeded", 1, time.time(), output=output)]
    if final:
        records.append(recorder.run_end(run_id, "succeeded"))
    steps._write(rt, records, moved=run_id)  # noqa: SLF001 - one way to record
    if final:
        lifecycle.run_ended(rt, with_output(ctx, step["id"], output), "succeeded")
    return output


# --- core.wait ---------------------------------------------------------------------------


def wait(task: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    rt = runtime()
    key = step_key(ctx, step["id"])
    output = _decided(rt, ctx, key)
    if output is None:
        started = time.time()
        try:
            inp = WaitInput.model_validate(render(step["with"], scope(ctx)))
        except (ValidationError, PermanentError) as exc:
            steps.fail(ctx, key, "core.wait", 1, started, f"bad wait: {exc}")
        wake = _wake_at(rt, ctx, key, inp.wake_at(started))
        if started < wake:
            _park(rt, ctx, key, "core.wait", wake, f"until {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(wake))}")
        output = _decide(rt, ctx, step, key, "core.wait", {"woke_at": round(wake, 3)}, step["final"])
    return with_output(ctx, step["id"], output)


# --- wait_for ----------------------------------------------------------------------------


def _key_value(ctx: dict[str, Any], spec: dict[str, Any]) -> Any:
    if spec.get("equals") is not None:
        return render(spec["equals"], scope(ctx))
    return evaluate(spec["match"], {"event": ctx["event"]})


def _look_back(rt: Runtime, ctx: dict[str, Any], spec: dict[str, Any], value: Any) -> dict[str, Any] | None:
    """An event of the awaited type and key that arrived shortly before the wait began."""
    since_ms = int((time.time() - rt.settings.wait_lookback_s) * 1000)
    entries = rt.redis.xrange(recent_key(ctx["run"]["tenant"], spec["event"]), min=since_ms, count=RECENT_MAX)
    for _, fields in entries:
        event = json.loads(fields[b"e"])
        try:
            if evaluate(spec["match"], {"event": event}) == value:
                return event  # type: ignore[no-any-return]
        except PermanentError:
            continue
    return None


def wait_for(task: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    rt = runtime()
    key = step_key(ctx, step["id"])
    spec = step["wait_for"]
    done = recorder.done_key(ctx["run"]["id"])
    output = _decided(rt, ctx, key)
    if output is None:
        started = time.time()
        try:
            value = _key_value(ctx, spec)
        except PermanentError as exc:
            steps.fail(ctx, key, "wait_for", 1, started, str(exc))
        waiters = waiters_key(ctx["run"]["tenant"], spec["event"], spec["match"], value)
        member = f"{ctx['run']['id']}|{key}"
        wake = _wake_at(rt, ctx, key, started + float(spec["timeout_s"]))
        pipe = rt.redis.pipeline(transaction=False)
        pipe.sadd(waiters, member)
        pipe.expire(waiters, int(spec["timeout_s"]) + 3600)
        pipe.execute()
        if rt.redis.hget(done, _event_field(key)) is None:
            early = _look_back(rt, ctx, spec, value)
            if early is not None:
                rt.redis.hsetnx(done, _event_field(key), recorder.dumps(early))
        arrived = rt.redis.hget(done, _event_field(key))
        if arrived is None and time.time() < wake:
            _park(rt, ctx, key, "wait_for", wake, f"for {spec['event']} with key {value!r}")
        rt.redis.srem(waiters, member)
        event = json.loads(arrived) if arrived is not None else None
        ends = step["final"] and step["else" if event is None else "then"] is None
        output = _decide(rt, ctx, step, key, "wait_for", {"timed_out": event is None, "event": event}, ends)
    with_output(ctx, step["id"], output)
    chosen = step["else"] if output["timed_out"] else step["then"]
    if chosen is None:
        return ctx
    steps.replace(task, bind(chosen, frames.slim(ctx), app=task.app))


def deliver(rt: Runtime, event: Event, event_ctx: dict[str, Any]) -> int:
    """Hand an arriving event to the runs waiting for it (and keep it for late waiters). Returns runs woken."""
    matches = rt.awaited.get(event.type)
    if not matches:
        return 0
    r = rt.redis
    text = recorder.dumps(event_ctx)
    r.xadd(recent_key(event.tenant, event.type), {"e": text}, maxlen=RECENT_MAX, approximate=True)
    woken = 0
    for match in matches:
        try:
            value = evaluate(match, {"event": event_ctx})
        except PermanentError:
            continue
        for member in r.smembers(waiters_key(event.tenant, event.type, match, value)):
            run_id, key = member.decode().split("|", 1)
            if r.hsetnx(recorder.done_key(run_id), _event_field(key), text) and lifecycle.wake(rt, run_id):
                woken += 1
    return woken


# --- call --------------------------------------------------------------------------------


def call(task: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    from workers.ingest import accept  # ingest hands events to deliver(): import at call time

    rt = runtime()
    key = step_key(ctx, step["id"])
    run_id = ctx["run"]["id"]
    output = _decided(rt, ctx, key)
    if output is None:
        started = time.time()
        raw = rt.redis.hget(recorder.done_key(run_id), lifecycle.result_field(key))
        if raw is not None:
            result = json.loads(raw)
            if result["status"] != "succeeded":
                steps.fail(
                    ctx,
                    key,
                    "call",
                    1,
                    started,
                    f"child run {result['run_id']} of {step['call']} {result['status']}: {result['error']}",
                )
            output = {"run_id": result["run_id"], "result": result["steps"]}
            output = _decide(rt, ctx, step, key, "call", output, step["final"])
            return with_output(ctx, step["id"], output)
        entry = rt.catalog.entries.get(step["call"])
        if entry is None:
            steps.fail(ctx, key, "call", 1, started, f"circuit {step['call']!r} is not deployed")
        try:
            data = render(step["with"], scope(ctx))
        except PermanentError as exc:
            steps.fail(ctx, key, "call", 1, started, str(exc))
        wake = _wake_at(rt, ctx, key, started + float(step["timeout_s"]))
        if started >= wake:
            steps.fail(
                ctx, key, "call", 1, started, f"child circuit {step['call']} did not end within {step['timeout_s']}s"
            )
        child = Event(
            id=f"call:{run_id}:{key}",
            source="circuit-os/call",
            type="circuit.called",
            subject=run_id,
            tenant=ctx["run"]["tenant"],
            data=data,
        )
        accept(rt, child, only=entry, reclaimed=True, parent={"run": run_id, "step": key})
        _park(rt, ctx, key, "call", wake, f"for child circuit {step['call']}")
    return with_output(ctx, step["id"], output)
