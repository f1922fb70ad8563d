"""From an accepted event to enqueued runs, exactly once per event id and idempotency key."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from circuits.catalog import Entry
from circuits.errors import EventError
from circuits.events import Event, parse_event
from workers import broker, durable, limits, metrics, progress, recorder
from workers.context import new_context
from workers.patience import OUTAGE, patient
from workers.progress import app_of_launch
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


@dataclass
class _Arrival:
    """One event on its way through :func:`_accept_many`, with what it starts."""

    event: Event
    only: Entry | None = None
    parent: dict[str, str] | None = None
    accepted: Accepted | None = None
    runs: list[tuple[Entry, str]] = field(default_factory=list)
    contexts: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


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
    [arrival] = _accept_many(rt, [_Arrival(event, only, parent)], reclaimed=reclaimed)
    assert arrival.accepted is not None
    return arrival.accepted


def accept_batch(rt: Runtime, raws: list[Any], *, origin: str, reclaimed: bool = False) -> list[Accepted | None]:
    """:func:`accept_isolated` for a batch (the stream reader's): one Redis round trip to dedupe the
    whole batch, then one per slice of its runs (:func:`_send_new`). A malformed event, or one that breaks
    processing, is a dead letter (None) and does not stop the others; a Redis outage is raised."""
    arrivals: list[_Arrival | None] = []
    for raw in raws:
        try:
            arrivals.append(_Arrival(parse_event(raw, rt.settings.event_max_bytes)))
        except EventError as exc:
            reject(rt, raw, exc, origin)
            arrivals.append(None)
    _accept_many(rt, [a for a in arrivals if a is not None], reclaimed=reclaimed, isolate=True, origin=origin)
    return [a.accepted if a is not None else None for a in arrivals]  # None too for a dead-lettered one


def _accept_many(
    rt: Runtime,
    arrivals: list[_Arrival],
    *,
    reclaimed: bool,
    isolate: bool = False,
    origin: str = "",
) -> list[_Arrival]:
    """The steps of :func:`accept` for many events at once. With ``isolate`` (a batch), an event whose
    matching fails is a dead letter and left out of the answer; otherwise the error is raised."""
    kept = _screen(rt, arrivals, reclaimed=reclaimed, isolate=isolate, origin=origin)
    _enqueue(rt, [a for a in kept if a.accepted is None], reclaimed=reclaimed)
    return kept


def _screen(rt: Runtime, arrivals: list[_Arrival], *, reclaimed: bool, isolate: bool, origin: str) -> list[_Arrival]:
    """Drop duplicates (one round trip for all), then match the rest (see :func:`_prepare`)."""
    pipe = rt.redis.pipeline(transaction=False)
    for a in arrivals:
        for key in _seen_keys(a.event):
            pipe.set(key, "1", nx=True, ex=rt.settings.dedupe_ttl_s)
    seen = iter(pipe.execute())
    now = time.time()
    kept: list[_Arrival] = []
    for a in arrivals:
        event = a.event
        if not all([next(seen) for _ in _seen_keys(event)]) and not reclaimed:
            log.info("event %s (%s) already seen; starting nothing", event.id, event.type)
            metrics.event(event.type, "duplicate")
            a.accepted = Accepted(event.id, duplicate=True)
        else:
            try:
                _prepare(rt, a, now)
            except OUTAGE:
                raise
            except Exception as exc:  # noqa: BLE001 - in a batch, poison must not stop the others
                if not isolate:
                    raise
                log.exception("event %s from %s could not be processed; keeping it as a dead letter", event.id, origin)
                reject(rt, event.as_context(), f"could not be processed: {type(exc).__name__}: {exc}"[:2000], origin)
                continue
        kept.append(a)
    return kept


def _enqueue(rt: Runtime, starting: list[_Arrival], *, reclaimed: bool) -> None:
    """Record the runs and put them under watch, then send the new ones (a run sent twice is harmless:
    each step runs once, see workers.claims; a run never sent is lost). A half-processed event is sent
    again unless its run ended."""
    if not starting:
        return
    runs = [(a, entry, run_id, ctx) for a in starting for (entry, run_id), ctx in zip(a.runs, a.contexts, strict=True)]
    if broker.can_ride(app_of_launch(), rt.settings.redis_url) and all(_unlimited(rt, e) for _, e, _, _ in runs):
        started = _send_new(rt, starting, runs, reclaimed=reclaimed)
    else:
        started = _record_then_admit(rt, starting, runs, reclaimed=reclaimed)
    for a in starting:
        metrics.event(a.event.type, "accepted")
        a.accepted = Accepted(a.event.id, run_ids=[run_id for (_, run_id) in a.runs if run_id in started])


def _unlimited(rt: Runtime, entry: Entry) -> bool:
    """A run of ``entry`` starts without waiting for a slot (no concurrency key, no tenant limit)."""
    return entry.circuit.trigger.concurrency is None and rt.settings.governor_max_concurrent_runs is None


def _write_runs(pipe: Any, rt: Runtime, starting: list[_Arrival]) -> None:
    for a in starting:
        for (_, run_id), ctx in zip(a.runs, a.contexts, strict=True):
            recorder.open_run(pipe, run_id)
            progress.track(pipe, run_id, ctx, rt.settings.stall_after_s)
        recorder.add_records(pipe, a.records)


#: Sends a run's messages only if it is new: its started mark is set now, or (``reclaimed``) it has not
#: ended. KEYS: the started mark, the done hash. ARGV: the mark's TTL, '1' if reclaimed, the end field,
#: then each command of the send as its number of words and the words.
_SEND_IF_NEW = """
local new = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1])
if not new and not (ARGV[2] == '1' and not redis.call('HGET', KEYS[2], ARGV[3])) then return 0 end
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""


def _send_new(
    rt: Runtime, starting: list[_Arrival], runs: list[tuple[_Arrival, Entry, str, dict[str, Any]]], *, reclaimed: bool
) -> set[str]:
    """Runs that start at once, in one round trip per slice (:func:`sends`): the records and the watch
    of every run ride with the first slice, and each run's messages are sent by a script that first
    sets its started mark, so a run is sent only if it is new, however often this is repeated."""
    started: set[str] = set()
    order = _hot_first(runs, lambda run: run[1])
    for i, part in enumerate(list(sends(order)) or [[]]):  # an event that starts nothing is still recorded
        words: list[list[Any]] = []
        for _, entry, _, ctx in part:
            priority = progress.new_run_priority(entry.circuit.trigger.priority)
            commands = broker.commands_of(functools.partial(progress.launch, entry.canvas, ctx, priority=priority))
            words.append([w for command in commands for w in (len(command), *command)])

        def go(part: list[Any] = part, words: list[list[Any]] = words, first: bool = i == 0) -> list[Any]:
            pipe = rt.redis.pipeline(transaction=False)
            if first:  # the runs are recorded and watched before any of them is sent
                _write_runs(pipe, rt, starting)
            for (_, _, run_id, _), argv in zip(part, words, strict=True):
                keys = [f"circuit:started:{run_id}", recorder.done_key(run_id)]
                args = [rt.settings.dedupe_ttl_s, "1" if reclaimed else "0", recorder.END_FIELD, *argv]
                pipe.eval(_SEND_IF_NEW, len(keys), *keys, *args)  # not EVALSHA: a pipeline's check costs a round trip
            replies = pipe.execute()
            return replies[len(replies) - len(part) :]

        replies = patient(go, rt.settings.redis_wait_s, "starting runs")
        started.update(run_id for (_, _, run_id, _), sent in zip(part, replies, strict=True) if sent)
    return started


def _record_then_admit(
    rt: Runtime, starting: list[_Arrival], runs: list[tuple[_Arrival, Entry, str, dict[str, Any]]], *, reclaimed: bool
) -> set[str]:
    """Runs that may wait for a slot (a concurrency key, a tenant limit), or a broker messages cannot
    ride to: record them and read which are new (one round trip), then admit and send those."""
    pipe = rt.redis.pipeline(transaction=False)
    for _, _, run_id, _ in runs:  # first the two answers per run that are read below, then the writes
        pipe.set(f"circuit:started:{run_id}", "1", nx=True, ex=rt.settings.dedupe_ttl_s)
        pipe.hget(recorder.done_key(run_id), recorder.END_FIELD)
    _write_runs(pipe, rt, starting)
    replies = iter(pipe.execute())
    new = []
    for _, entry, run_id, ctx in runs:
        is_new, end = next(replies), next(replies)
        if is_new or (reclaimed and end is None):
            new.append((entry, run_id, ctx))
    _start_all(rt, [(e, ctx) for e, _, ctx in _hot_first(new, lambda n: n[0])])
    return {run_id for _, run_id, _ in new}


def _hot_first(runs: list[Any], entry_of: Callable[[Any], Entry]) -> list[Any]:
    """Higher trigger priority first (stable): a hot lead read in the same batch as an import is sent before it."""
    return sorted(runs, key=lambda run: -entry_of(run).circuit.trigger.priority)


def _prepare(rt: Runtime, a: _Arrival, now: float) -> None:
    """Observe, match and build the contexts and ledger records of ``a``'s runs (or refuse it)."""
    event = a.event
    if event.chaindepth > rt.settings.max_chain_depth:  # a circuit whose writes keep re-triggering circuits
        chain = " -> ".join((["..."] if event.chaindepth > len(event.chain) else []) + event.chain)
        limit = f"chain depth {event.chaindepth} over CIRCUIT_MAX_CHAIN_DEPTH={rt.settings.max_chain_depth}"
        reject(rt, event.as_context(), f"{event.type} refused: {chain}: {limit}", "chain-depth")
        a.accepted = Accepted(event.id)
        return
    event_ctx = event.as_context()
    if a.only is None:
        _observe(rt, event, event_ctx)
    entries = [a.only] if a.only else rt.catalog.match(event, event_ctx)
    a.runs = [(e, run_id_for(event, e.name)) for e in entries]
    a.contexts = [new_context(run_id, e.name, e.version, event, event_ctx, e.circuit.vars) for e, run_id in a.runs]
    if a.parent:
        for ctx in a.contexts:
            ctx["run"]["parent"] = a.parent
    a.records = _records(event, event_ctx, a.runs, now, a.parent)


def _observe(rt: Runtime, event: Event, event_ctx: dict[str, Any]) -> None:
    """Hand the event to runs waiting for it and to stateful triggers; start what those fire."""
    if rt.awaited:
        durable.deliver(rt, event, event_ctx)
    if rt.triggers.entries:
        for entry, fired in rt.triggers.observe(event, event_ctx):
            accept(rt, fired, only=entry)  # its own event: dedupe makes a repeat start nothing


#: Runs sent per round trip, from the first send of a batch to its largest: the first runs of a batch
#: reach the workers after a few messages are built, not after the whole batch (a batch of 200
#: ten-way parallel runs kept the workers idle for a second), and a batch still takes few round trips.
FIRST_SEND, LARGEST_SEND = 4, 64


def sends(items: list[Any], first: int = FIRST_SEND, largest: int = LARGEST_SEND) -> Iterator[list[Any]]:
    """``items`` in consecutive slices of ``first``, twice that, ... up to ``largest`` items."""
    start, size = 0, first
    while start < len(items):
        yield items[start : start + size]
        start, size = start + size, min(size * 2, largest)


def _start_all(rt: Runtime, runs: list[tuple[Entry, dict[str, Any]]]) -> None:
    """Send the runs that may start now, in order; a run may wait for a slot of its tenant (governor)
    or of its concurrency key instead. Their messages go to Redis a slice of runs per round trip when
    they can ride on a pipeline (:mod:`workers.broker`, slices from :func:`sends`); a repeat after a
    lost reply only sends duplicates, which the step claims make harmless."""
    go = [(e, ctx) for e, ctx in runs if limits.admit_tenant(rt, ctx) and limits.admit(rt, e, ctx)]
    if not go:
        return

    def send(part: list[tuple[Entry, dict[str, Any]]]) -> None:
        for entry, ctx in part:
            progress.launch(entry.canvas, ctx, priority=progress.new_run_priority(entry.circuit.trigger.priority))

    if not broker.can_ride(app_of_launch(), rt.settings.redis_url):
        send(go)
        return

    def ride(part: list[tuple[Entry, dict[str, Any]]]) -> None:
        pipe = rt.redis.pipeline(transaction=False)
        with broker.riding(pipe):
            send(part)
        pipe.execute()

    for part in sends(go):
        patient(functools.partial(ride, part), rt.settings.redis_wait_s, "starting runs")


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
