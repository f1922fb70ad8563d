"""What the Celery tasks do: run an action step, join branches, branch, loop.

The task wrappers in :mod:`workers.tasks` are thin; the logic is here, so the
order of operations (check done, run, record, continue or fail) reads in one place.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, NoReturn

from celery import Task
from celery.canvas import Signature, chord, signature
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from pydantic import ValidationError

from circuits.actions import ActionContext, ActionSpec
from circuits.compiler import CONTROL_QUEUE, FOREACH_JOIN_TASK, bind
from circuits.errors import PermanentError
from circuits.expressions import evaluate, render
from storage.ledger import bounded
from workers import broker, frames, governors, inline, lifecycle, limits, metrics, progress, recorder, results
from workers.context import leave_loop, loop_of, merge, scope, step_key, step_log, with_output
from workers.patience import patient
from workers.runtime import Runtime, runtime


def backoff_s(retry: dict[str, Any], attempt: int) -> float:
    """Exponential backoff for the retry after ``attempt``, capped, with full jitter."""
    delay = min(float(retry.get("backoff_max_s", 300.0)), float(retry.get("backoff_s", 1.0)) * 2 ** (attempt - 1))
    return random.uniform(0, delay) if retry.get("jitter", True) else delay


#: Longest wait a Retry-After can ask for: a countdown is an ETA the broker must keep.
RETRY_AFTER_MAX_S = 300.0
#: A message whose step another live execution holds checks again this many times at most.
MAX_WAITS = 1000


def run_action(
    task: Task, spec: ActionSpec, ctx: dict[str, Any], step: dict[str, Any], waits: int = 0
) -> dict[str, Any] | None:
    rt = runtime()
    run_id = ctx["run"]["id"]
    key = step_key(ctx, step["id"])
    log = step_log(ctx, key)
    stored = _claim(task, rt, ctx, step, key, spec.name, waits)
    if stored is not None:
        return stored
    limits.throttle(rt, task, ctx, step, spec.name)  # returns when it may run; else re-sent for later
    attempt = task.request.retries + 1 - waits
    started = time.time()
    actx = ActionContext(
        run_id=run_id,
        step_id=key,
        circuit=ctx["run"]["circuit"],
        attempt=attempt,
        event=ctx["event"],
        resources=rt.resources,
        log=log,
        emitter=_emit,
    )
    rt.heartbeat.hold(run_id, key)
    try:
        inputs = render(step["with"], scope(ctx))
        output = spec.run(actx, inputs)
    except ValidationError as exc:
        fail(ctx, key, spec.name, attempt, started, f"input does not fit {spec.name}: {_first_error(exc)}")
    except PermanentError as exc:
        fail(ctx, key, spec.name, attempt, started, str(exc))
    except Exception as exc:  # noqa: BLE001 - anything else is transient until retries run out
        message = (
            f"timed out after {task.request.timelimit[1] or '?'}s"
            if isinstance(exc, SoftTimeLimitExceeded)
            else f"{type(exc).__name__}: {exc}"
        )
        retry = step["retry"]
        if attempt <= int(retry.get("max", 0)):
            delay = backoff_s(retry, attempt)
            wait = getattr(exc, "retry_after_s", None)
            if wait is not None:  # the server said "not before": never sooner, capped below the visibility timeout
                delay = max(delay, min(float(wait), RETRY_AFTER_MAX_S) + random.uniform(0, min(1.0, 0.1 * wait)))
            log.warning("attempt %d failed (%s); retrying in %.2fs", attempt, message, delay)
            metrics.step_retried(spec.name, started)
            record = recorder.step_record(run_id, key, spec.name, "retrying", attempt, started, error=message)
            _write(rt, [record], release=(run_id, key))
            raise task.retry(exc=exc, countdown=delay, max_retries=None) from None
        fail(ctx, key, spec.name, attempt, started, message)
    finally:
        rt.heartbeat.release(run_id, key)
    try:
        out_json = recorder.dumps(output)
    except (TypeError, ValueError, RecursionError) as exc:
        fail(ctx, key, spec.name, attempt, started, f"output cannot be stored as JSON: {exc}"[:1000])
    if len(out_json) > rt.settings.output_max_bytes:
        fail(
            ctx,
            key,
            spec.name,
            attempt,
            started,
            f"output is {len(out_json)} bytes, over CIRCUIT_OUTPUT_MAX_BYTES={rt.settings.output_max_bytes}",
        )
    records = [
        recorder.step_record(
            run_id,
            key,
            spec.name,
            "succeeded",
            attempt,
            started,
            output=bounded(output, rt.settings.ledger_output_max_bytes, out_json),
        )
    ]
    if step["final"]:
        records.append(recorder.run_end(run_id, "succeeded"))
    with_output(ctx, step["id"], output)
    # the done mark goes first, alone: an action killed between its effect and this mark runs again, so
    # nothing may widen that window (building the next step's message inside it did, by about 0.5 ms)
    patient(
        lambda: recorder.step_done(
            rt.redis, run_id, key, out_json, records, rt.settings.stall_after_s, governors.tokens_of(output)
        ),
        rt.settings.redis_wait_s,
        "recording a step",
    )
    metrics.step_ended(spec.name, started)
    if step["final"]:
        lifecycle.run_ended(rt, ctx, "succeeded")
    sent = inline.run_next(task, rt, ctx, started) or _send_next(task, rt, ctx)
    if sent:
        # Celery must not send the next step again, and nothing reads this return value (walking the
        # context for Celery's result repr cost 6% of a step's CPU)
        task.request.chain = None
        return None
    return ctx


def _send_next(task: Task, rt: Runtime, ctx: dict[str, Any]) -> bool:
    """Send the chain's next step as Celery would once the task returns, but with its task-sent event in
    one round trip (a pipeline the message rides on, :mod:`workers.broker`); False where it cannot ride
    (no next step in a chain, or the broker is not the engine's Redis) and Celery sends it.
    Killed before this, the step's message comes back (acks late) and finds the step done: the chain
    goes on from its stored output. A repeat after a lost reply only sends a duplicate (claims)."""
    chain = task.request.chain
    if not chain or not broker.can_ride(task.app, rt.settings.redis_url):
        return False
    parent = task.request.id
    root = task.request.root_id or parent
    inherit = task.app.conf.task_inherit_parent_priority  # as Celery chooses the next step's priority
    priority = (task.request.delivery_info or {}).get("priority") if inherit else None

    def send() -> None:
        pipe = rt.redis.pipeline(transaction=False)
        with broker.riding(pipe), results.dropping_new(task.app.backend):
            signature(chain[-1], app=task.app).apply_async(
                (frames.slim(ctx),), chain=chain[:-1], parent_id=parent, root_id=root, priority=priority
            )
        pipe.execute()

    patient(send, rt.settings.redis_wait_s, "sending the next step")
    return True


def whole(ctx: dict[str, Any]) -> dict[str, Any]:
    """A task's context argument made whole (a loop item's comes slim, :mod:`workers.frames`), waiting
    out a Redis restart as every other call of a step does."""
    if "frame" not in ctx:
        return ctx
    rt = runtime()
    return patient(lambda: frames.full(rt.redis, ctx), rt.settings.redis_wait_s, "reading a loop's context")


def replace(task: Task, sig: Signature) -> NoReturn:
    """Go on as ``sig`` in this task's place (Celery's ``replace``), its messages sent in one round trip
    where they can ride (:mod:`workers.broker`): Celery sends a foreach batch's 100 items one round trip
    each, and subscribes to each item's result, which nobody reads (:mod:`workers.results`)."""
    rt = runtime()
    if not broker.can_ride(task.app, rt.settings.redis_url):
        raise task.replace(sig)
    pipe = rt.redis.pipeline(transaction=False)
    try:
        with broker.riding(pipe), results.dropping_new(task.app.backend):
            task.replace(sig)
    except Ignore:  # sent (onto the pipeline): Celery acknowledges this task once we re-raise
        patient(pipe.execute, rt.settings.redis_wait_s, "sending the steps that replace a task")
        raise
    raise AssertionError("Celery's replace returned instead of raising")  # eager mode, which we never use


def _emit(envelope: dict[str, Any]) -> None:
    """Events an action emits are accepted right here, like a direct publish (ingest dedupes their ids)."""
    from workers.ingest import accept_isolated  # ingest reaches the steps through durable waits

    rt = runtime()
    patient(lambda: accept_isolated(rt, envelope, origin="emit"), rt.settings.redis_wait_s, "emitting an event")


def _claim(
    task: Task, rt: Runtime, ctx: dict[str, Any], step: dict[str, Any], key: str, action: str, waits: int
) -> dict[str, Any] | None:
    """Take the step's lease (None: run it), or return the context with its stored output (it already
    succeeded), or stop here (the run is cancelled), or come back later (a live worker holds it), or
    fail the run (it is over a governor limit: steps, duration, LLM tokens)."""
    log = step_log(ctx, key)
    run_id = ctx["run"]["id"]
    attempt = task.request.retries + 1 - waits
    running = recorder.dumps(recorder.step_record(run_id, key, action, "running", attempt, time.time()))
    verdict = patient(
        lambda: rt.claims.begin(run_id, key, task.request.id, running), rt.settings.redis_wait_s, "step start"
    )
    if verdict.state == "done":
        log.info("already succeeded; not running it again")
        return with_output(ctx, step["id"], json.loads(verdict.output or "null"))
    if verdict.state == "cancelled":
        stop_cancelled(ctx, key, action)
    if verdict.state == "held":
        if waits >= MAX_WAITS:
            log.error("gave up waiting for another execution of this step; the watchdog will resume the run")
            raise Ignore()
        log.info("another execution holds this step; checking again in %.1fs", verdict.wait_s)
        raise task.retry(countdown=verdict.wait_s, max_retries=None, kwargs={"step": step, "waits": waits + 1})
    over = governors.exceeded(rt.settings, ctx, verdict.steps, verdict.tokens)
    if over:
        fail(ctx, key, action, attempt, time.time(), over)
    return None


def _write(
    rt: Runtime, records: list[dict[str, Any]], release: tuple[str, str] | None = None, moved: str | None = None
) -> None:
    """Append ledger records (free a step's lease, note the run's progress), waiting out a Redis restart."""

    def go() -> None:
        pipe = rt.redis.pipeline(transaction=True)
        if release:
            pipe.delete(recorder.claim_key(*release))
        if moved:
            progress.moved(pipe, moved, rt.settings.stall_after_s)
        recorder.add_records(pipe, records)
        pipe.execute()

    patient(go, rt.settings.redis_wait_s, "recording")


def stop_cancelled(ctx: dict[str, Any], key: str, action: str | None) -> None:
    """The run was cancelled: record it as such at this step and go no further."""
    rt = runtime()
    run_id = ctx["run"]["id"]
    step_log(ctx, key).info("run cancelled; stopping before this step")
    now = time.time()
    _write(
        rt,
        [
            recorder.step_record(run_id, key, action, "cancelled", 0, now),
            recorder.run_end(run_id, "cancelled", error=f"cancelled before step {key}"),
        ],
    )
    lifecycle.run_ended(rt, ctx, "cancelled", f"cancelled before step {key}")
    raise Ignore()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def fail(ctx: dict[str, Any], key: str, action: str | None, attempt: int, started: float, message: str) -> None:
    """Record the step and the run as failed, start on_failure once per run, stop this path."""
    rt = runtime()
    run_id = ctx["run"]["id"]
    step_log(ctx, key).error("failed: %s", message)

    def record() -> Any:
        pipe = rt.redis.pipeline(transaction=True)
        pipe.set(recorder.failed_key(run_id), key, nx=True, ex=recorder.DONE_TTL_S)
        pipe.delete(recorder.claim_key(run_id, key))
        recorder.add_records(
            pipe,
            [
                recorder.step_record(run_id, key, action, "failed", attempt, started, error=message),
                recorder.run_end(run_id, "failed", error=f"{key}: {message}"),
            ],
        )
        return pipe.execute()[0]

    first = patient(record, rt.settings.redis_wait_s, "recording a failure")
    metrics.step_failed(action, started, first)
    lifecycle.run_ended(rt, ctx, "failed", f"{key}: {message}")
    if first and not ctx.get("error"):
        start_on_failure(ctx, key, message)
    raise PermanentError(f"step {key} failed: {message}")


def start_on_failure(ctx: dict[str, Any], key: str, message: str) -> None:
    entry = runtime().catalog.entries.get(ctx["run"]["circuit"])
    if entry is None or entry.on_failure is None:
        return
    failed_ctx = {**ctx, "loop": None, "error": {"step": key, "message": message}}
    bind(entry.on_failure, failed_ctx).apply_async()


def _finish_control(
    ctx: dict[str, Any],
    step: dict[str, Any],
    kind: str,
    started: float,
    output: Any,
    extra: list[dict[str, Any]] | None = None,
    then: Callable[[Any, dict[str, Any]], None] | None = None,
) -> None:
    """Record a control step as succeeded (and the run's end if it is the last step). With ``then``
    (:func:`workers.joins.arrive`), also mark the step done and send what follows, in the same MULTI."""
    rt = runtime()
    run_id = ctx["run"]["id"]
    key = step_key(ctx, step["id"])
    records = [
        recorder.step_record(
            run_id, key, kind, "succeeded", 1, started, output=bounded(output, rt.settings.ledger_output_max_bytes)
        )
    ]
    if step["final"]:
        records.append(recorder.run_end(run_id, "succeeded"))
    if then is None:
        _write(rt, records + (extra or []), moved=run_id)
    else:

        def done_and_next(pipe: Any) -> None:
            then(pipe, ctx)

        patient(
            lambda: recorder.step_done(
                rt.redis, run_id, key, recorder.dumps(output), records, rt.settings.stall_after_s, then=done_and_next
            ),
            rt.settings.redis_wait_s,
            "recording a join",
        )
    if step["final"]:
        lifecycle.run_ended(rt, ctx, "succeeded")


def join(results: list[dict[str, Any]], step: dict[str, Any]) -> dict[str, Any]:
    """End of a parallel block, as a task of its own: merge the branches' contexts."""
    return join_inline(results, step)


def join_inline(
    results: list[dict[str, Any]], step: dict[str, Any], then: Callable[[Any, dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """End of a parallel block: merge the branches' contexts (in branch order), record the join; ``then``
    sends the steps after it on the same MULTI (a join made by its last branch, :mod:`workers.joins`)."""
    started = time.time()
    ctx = merge(results)
    output = {"branches": len(results)}
    with_output(ctx, step["id"], output)
    _finish_control(ctx, step, "parallel", started, output, then=then or _no_next)
    return ctx


def _no_next(pipe: Any, ctx: dict[str, Any]) -> None:
    """A join task's own: Celery sends what follows it once it returns."""


def branch(task: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    """``if``: evaluate the condition, then continue with the chosen steps in place of this task."""
    started = time.time()
    key = step_key(ctx, step["id"])
    try:
        value = bool(evaluate(step["if"], scope(ctx)))
    except PermanentError as exc:
        fail(ctx, key, "if", 1, started, str(exc))
    chosen = step["then"] if value else step["else"]
    output = {"condition": value, "taken": "then" if value else ("else" if chosen else "none")}
    with_output(ctx, step["id"], output)
    if chosen is None:
        _finish_control(ctx, step, "if", started, output)
        return ctx
    _finish_control(ctx, {**step, "final": False}, "if", started, output)
    replace(task, bind(chosen, frames.slim(ctx), app=task.app))


def _items(ctx: dict[str, Any], step: dict[str, Any], key: str, started: float) -> list[Any]:
    try:
        items = evaluate(step["foreach"], scope(ctx))
    except PermanentError as exc:
        fail(ctx, key, "foreach", 1, started, str(exc))
    if not isinstance(items, (list, tuple)):
        fail(ctx, key, "foreach", 1, started, f"foreach needs a list, {step['foreach']!r} gave {type(items).__name__}")
    limit = runtime().settings.foreach_max_items
    cap = min(step.get("max_items") or limit, limit)
    if len(items) > cap:
        fail(ctx, key, "foreach", 1, started, f"{len(items)} items, over the limit of {cap}")
    return list(items)


def _batch(task: Task, ctx: dict[str, Any], step: dict[str, Any], items: list[Any], offset: int) -> Signature:
    """The next ``concurrency`` items as a chord. Each item's message carries its item and a frame's
    name, not the context (stored once: :mod:`workers.frames`), and the outputs gathered so far stay in
    Redis (:func:`_gather`): Celery puts the chord's join in every item's message, so outputs carried by
    the join moved O(n^2) bytes (30 KB per message by the last batch of 1,000 small outputs)."""
    batch = items[offset : offset + int(step["concurrency"])]
    rt = runtime()
    frame = frames.frame_key(ctx["run"]["id"], step_key(ctx, step["id"]))
    lean = {**ctx, "steps": {**ctx["steps"], step["id"]: []}}
    patient(lambda: frames.store(rt.redis, frame, lean), rt.settings.redis_wait_s, "storing a loop's context")
    run = ctx["run"]
    header = [
        bind(step["do"], frames.item(frame, run, loop_of(ctx, step["id"], offset + i, it, frame)), app=task.app)
        for i, it in enumerate(batch)
    ]
    after = Signature(
        FOREACH_JOIN_TASK,
        kwargs={"step": step, "offset": offset + len(batch)},
        options={"queue": CONTROL_QUEUE},
        app=task.app,
    )
    return chord(header, after, app=task.app)


def _gather(
    ctx: dict[str, Any], key: str, start: int, outputs: list[Any], last: bool, earlier: list[Any] | None
) -> list[Any]:
    """Keep one batch's outputs (under its offset, so a repeated join writes the same field); after the
    last batch, all of them in item order. ``earlier``: the outputs a join sent by an older worker carried."""
    rt = runtime()
    name = recorder.gathered_key(ctx["run"]["id"], key)

    def write() -> Any:
        pipe = rt.redis.pipeline(transaction=True)
        if earlier is not None:
            pipe.hset(name, "0", recorder.dumps(earlier))
        pipe.hset(name, str(start), recorder.dumps(outputs))
        pipe.expire(name, recorder.DONE_TTL_S)  # a repeated last join must still find them
        if last:
            pipe.hgetall(name)
        return pipe.execute()

    stored = patient(write, rt.settings.redis_wait_s, "gathering foreach outputs")
    if not last:
        return []
    by_index: dict[int, Any] = {}  # by item index: a run resumed under other batch sizes overlaps, not repeats
    for offset, text in stored[-1].items():
        for i, out in enumerate(json.loads(text)):
            by_index[int(offset) + i] = out
    return [by_index[i] for i in sorted(by_index)]


def foreach(task: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    """Fan out over a list, ``concurrency`` items at a time; outputs gather in ``steps.<id>``."""
    started = time.time()
    items = _items(ctx, step, step_key(ctx, step["id"]), started)
    with_output(ctx, step["id"], [])
    if not items:
        _finish_control(ctx, step, "foreach", started, {"items": 0})
        return ctx
    replace(task, _batch(task, ctx, step, items, 0))


def foreach_join(
    task: Task, results: list[dict[str, Any]], step: dict[str, Any], offset: int, gathered: list[Any] | None = None
) -> dict[str, Any]:
    started = time.time()
    results = sorted(results, key=lambda r: r["loop"]["index"])
    ctx = leave_loop(whole(results[0]), step["body_ids"])
    key = step_key(ctx, step["id"])
    items = _items(ctx, step, key, started)  # re-read: messages carry no item list
    outputs = [{k: r["steps"][k] for k in step["body_ids"] if k in r["steps"]} for r in results]
    last = offset >= len(items)
    # an older worker's join carried the outputs so far (or, older still, its context did)
    earlier = gathered if gathered is not None else (ctx["steps"].get(step["id"]) or None)
    ctx["steps"][step["id"]] = _gather(ctx, key, offset - len(results), outputs, last, earlier)
    if not last:
        replace(task, _batch(task, ctx, step, items, offset))
    _finish_control(ctx, step, "foreach", started, {"items": len(items)})
    return ctx
