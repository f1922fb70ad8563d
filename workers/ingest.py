"""From an accepted event to enqueued runs, exactly once per event id and idempotency key."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from circuits.catalog import Entry
from circuits.errors import EventError
from circuits.events import Event, parse_event
from workers import durable, limits, metrics, progress, recorder
from workers.context import new_context
from workers.patience import OUTAGE
from workers.runtime import Runtime

log = logging.getLogger(__name__)
RUN_NAMESPACE = uuid.UUID("6f1c2a52-8d8e-4a53-9d0e-6a1f3c1d2b7e")


@dataclass
class Accepted:
    event_id: str
    duplicate: bool = False
    run_ids: list[str] = field(default_factory=list)


def run_id_for(event: Event, circuit: str) -> str:
    """Deterministic, so an event processed twice (a crash before ack) maps to the same runs."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{event.tenant}/{event.id}/{circuit}"))


def _seen_keys(event: Event) -> list[str]:
    keys = [f"circuit:seen:{event.tenant}:id:{event.id}"]
    if event.idempotencykey:
        keys.append(f"circuit:seen:{event.tenant}:key:{event.idempotencykey}")
    return keys


def accept(
    rt: Runtime,
    event: Event,
    *,
    reclaimed: bool = False,
    only: Entry | None = None,
    parent: dict[str, str] | None = None,
) -> Accepted:
    """Remember the event, hand it to runs waiting for it, match circuits, record and enqueue their runs.

    ``reclaimed`` is true when this event may have been half processed before (a
    redelivered message, a reclaimed stream entry): then a seen id is not a duplicate,
    and only runs not yet started are enqueued. ``parent`` names the run and step of a
    ``call`` that starts this run as its child.
    """
    r = rt.redis
    pipe = r.pipeline(transaction=False)
    for key in _seen_keys(event):
        pipe.set(key, "1", nx=True, ex=rt.settings.dedupe_ttl_s)
    if not all(pipe.execute()) and not reclaimed:
        log.info("event %s (%s) already seen; starting nothing", event.id, event.type)
        metrics.event(event.type, "duplicate")
        return Accepted(event.id, duplicate=True)
    if event.chaindepth > rt.settings.max_chain_depth:  # a circuit whose writes keep re-triggering circuits
        chain = " -> ".join((["..."] if event.chaindepth > len(event.chain) else []) + event.chain)
        limit = f"chain depth {event.chaindepth} over CIRCUIT_MAX_CHAIN_DEPTH={rt.settings.max_chain_depth}"
        reject(rt, event.as_context(), f"{event.type} refused: {chain}: {limit}", "chain-depth")
        return Accepted(event.id)
    event_ctx = event.as_context()
    if only is None:
        _observe(rt, event, event_ctx)
    entries = [only] if only else rt.catalog.match(event, event_ctx)
    now = time.time()
    runs = [(e, run_id_for(event, e.name)) for e in entries]
    contexts = [new_context(run_id, e.name, e.version, event, event_ctx, e.circuit.vars) for e, run_id in runs]
    if parent:
        for ctx in contexts:
            ctx["run"]["parent"] = parent
    pipe = r.pipeline(transaction=False)
    for _, run_id in runs:
        pipe.set(f"circuit:started:{run_id}", "1", nx=True, ex=rt.settings.dedupe_ttl_s)
    for _, run_id in runs:
        pipe.hget(recorder.done_key(run_id), recorder.END_FIELD)
    for (_, run_id), ctx in zip(runs, contexts, strict=True):
        recorder.open_run(pipe, run_id)
        progress.track(pipe, run_id, ctx, rt.settings.stall_after_s)
    recorder.add_records(pipe, _records(event, event_ctx, runs, now, parent))
    replies = pipe.execute()
    fresh, ended = replies[: len(runs)], replies[len(runs) : 2 * len(runs)]
    started = []
    for (entry, run_id), ctx, is_new, end in zip(runs, contexts, fresh, ended, strict=True):
        # a half-processed event is sent again unless its run ended: a run sent twice is
        # harmless (each step runs once, see workers.claims), a run never sent is lost
        if is_new or (reclaimed and end is None):
            _start(rt, entry, ctx)
            started.append(run_id)
    metrics.event(event.type, "accepted")
    return Accepted(event.id, run_ids=started)


def _observe(rt: Runtime, event: Event, event_ctx: dict[str, Any]) -> None:
    """Hand the event to runs waiting for it and to stateful triggers; start what those fire."""
    if rt.awaited:
        durable.deliver(rt, event, event_ctx)
    if rt.triggers.entries:
        for entry, fired in rt.triggers.observe(event, event_ctx):
            accept(rt, fired, only=entry)  # its own event: dedupe makes a repeat start nothing


def _start(rt: Runtime, entry: Entry, ctx: dict[str, Any]) -> None:
    # a run may wait for a slot of its tenant (governor) or of its concurrency key instead
    if limits.admit_tenant(rt, ctx) and limits.admit(rt, entry, ctx):
        progress.launch(entry.canvas, ctx, priority=progress.new_run_priority(entry.circuit.trigger.priority))


def _records(
    event: Event, event_ctx: dict[str, Any], runs: list[tuple[Entry, str]], now: float, parent: dict[str, str] | None
) -> list[dict[str, Any]]:
    """The ledger records of an accepted event and the runs it starts."""
    return [
        {
            "k": "event",
            "id": event.id,
            "tenant": event.tenant,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "idempotencykey": event.idempotencykey,
            "time_ts": event.time.timestamp(),
            "at": now,
            "data": event_ctx["data"],
            "runs": len(runs),
        },
        *(
            {
                "k": "run",
                "run_id": run_id,
                "circuit": e.name,
                "version": e.version,
                "event_id": event.id,
                "event_type": event.type,
                "at": now,
                "parent": parent["run"] if parent else None,
                "tenant": event.tenant,
            }
            for e, run_id in runs
        ),
    ]


def reject(rt: Runtime, raw: Any, error: EventError | str, origin: str) -> None:
    """Keep a rejected event as a dead letter, with the reason."""
    field_name = error.field if isinstance(error, EventError) else None
    if isinstance(raw, str):
        text = raw.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be stored
    elif isinstance(raw, bytes):
        text = raw.decode("utf-8", "replace")
    else:
        try:
            text = recorder.dumps(raw)
        except (TypeError, ValueError, RecursionError):
            text = repr(raw)[: rt.settings.event_max_bytes]
    recorder.write(
        rt.redis,
        [
            {
                "k": "rejected",
                "at": time.time(),
                "origin": origin,
                "field": field_name,
                "error": str(error),
                "raw": text[: rt.settings.event_max_bytes],
            }
        ],
    )
    log.warning("rejected event from %s: %s", origin, error)
    metrics.event_rejected(raw)


def accept_raw(rt: Runtime, raw: Any, *, origin: str, reclaimed: bool = False) -> Accepted | None:
    """Parse and accept; a malformed event is dead-lettered and None returned."""
    try:
        event = parse_event(raw, rt.settings.event_max_bytes)
    except EventError as exc:
        reject(rt, raw, exc, origin)
        return None
    return accept(rt, event, reclaimed=reclaimed)


def accept_isolated(rt: Runtime, raw: Any, *, origin: str, reclaimed: bool = False) -> Accepted | None:
    """:func:`accept_raw`, where an event that breaks processing becomes a dead letter instead of
    stopping the batch around it. A Redis outage is not the event's fault: it is raised, so the
    caller keeps the event and tries again."""
    try:
        return accept_raw(rt, raw, origin=origin, reclaimed=reclaimed)
    except OUTAGE:
        raise
    except Exception as exc:  # noqa: BLE001 - poison must not stop ingest
        log.exception("event from %s could not be processed; keeping it as a dead letter", origin)
        reject(rt, raw, f"could not be processed: {type(exc).__name__}: {exc}"[:2000], origin)
        return None
