"""Per-key concurrency and per-action rate limits, shared by every worker through Redis.

Both are Lua scripts, so each decision is one atomic round trip however many workers ask.

**Concurrency** (``trigger.concurrency: {key, limit}``). A key (a lead, an account; per
circuit and tenant) has a sorted set of slot holders (run id scored by its lease end) and a
FIFO list of waiting run ids. :func:`admit` takes a slot or joins the list; a waiting run's
context is the one :mod:`workers.progress` already saved in its done hash, and it is taken
out of ``circuit:active`` so the watchdog does not start it early. :func:`on_run_end` frees
the slot and starts the next runs in order. Slots cannot leak: before every decision a
holder whose run has ended (``__end__`` in its done hash) or whose lease
(``CIRCUIT_CONCURRENCY_LEASE_S``) ran out is dropped, and :func:`sweep` does the same for
keys with waiting runs, for ends nobody reported (a worker killed between recording the
end and freeing the slot, a run the watchdog gave up on).

**Runs per tenant** (``CIRCUIT_GOVERNOR_MAX_CONCURRENT_RUNS``) is the same slot protocol on
one key per tenant, for every circuit: :func:`admit_tenant` comes first, a run's own key
(if its circuit has one) second, and a run started from the tenant's queue then goes
through its key's admission like a new run.

**Rate limits** (``rate_limit: "1/s"``). GCRA with reservations: each call takes the next
free instant of the action's bucket (one every ``period / count``), so N waiting steps get N
distinct instants and each is re-sent once, not polled. A step whose instant is near sleeps
in place; any longer wait re-sends the same message (same task id, chain, chord and retry
count, so the wait is not an attempt) with a countdown of at most :data:`HOP_MAX_S`, which
keeps it far below the broker's visibility timeout, and carries its reservation along.

The scripts touch keys they compute (other runs' done hashes, ``circuit:active``), like the
rest of the engine they assume one Redis, not a cluster.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import lru_cache
from typing import Any

import redis
from celery import Task
from celery.exceptions import Retry

from circuits.catalog import Entry
from circuits.errors import PermanentError
from circuits.expressions import evaluate
from circuits.rates import Rate, parse_rate
from workers import progress, recorder
from workers.context import step_key
from workers.runtime import Runtime

__all__ = ["acquire_rate", "admit", "admit_tenant", "on_run_end", "release", "sweep", "throttle"]
log = logging.getLogger(__name__)

#: Longest countdown of one re-sent message; a longer wait is several hops.
HOP_MAX_S = 20.0
#: A wait this short is slept in place rather than re-sent.
SLEEP_MAX_S = 0.1
WAITING = "circuit:limit:waiting"  # hash: key base -> circuit, for keys with waiting runs

_COMMON = """
local slots, queue, active, waiting = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local limit, lease, stall = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, end_field, ctx_field, base = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
for _, id in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
  if redis.call('HEXISTS', prefix .. id, end_field) == 1 then redis.call('ZREM', slots, id) end
end
local function hold(id)
  redis.call('ZADD', slots, now + lease, id)
  redis.call('EXPIRE', slots, math.ceil(lease))
end
local function fill()
  local started = {}
  while redis.call('ZCARD', slots) < limit do
    local id = redis.call('LPOP', queue)
    if not id then break end
    local done = prefix .. id
    if redis.call('HEXISTS', done, ctx_field) == 1 and redis.call('HEXISTS', done, end_field) == 0 then
      hold(id)
      redis.call('ZADD', active, now + stall, id)
      table.insert(started, id)
    end
  end
  if redis.call('LLEN', queue) == 0 then redis.call('HDEL', waiting, base) end
  return started
end
"""

_ADMIT = (
    _COMMON
    + """
local run = ARGV[1]
if redis.call('ZSCORE', slots, run) then return {'start', fill()} end
if redis.call('LPOS', queue, run) then
  redis.call('ZREM', active, run)
  return {'queued', fill()}
end
if redis.call('ZCARD', slots) < limit and redis.call('LLEN', queue) == 0 then
  hold(run)
  return {'start', {}}
end
redis.call('RPUSH', queue, run)
redis.call('EXPIRE', queue, ARGV[9])
redis.call('HSET', waiting, base, ARGV[10])
redis.call('ZREM', active, run)
return {'queued', fill()}
"""
)

_RELEASE = (
    _COMMON
    + """
if ARGV[1] ~= '' then redis.call('ZREM', slots, ARGV[1]) end
return fill()
"""
)

_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] ~= '' then
  local at = tonumber(ARGV[2])
  if at < now then return {0, at} end
  return {at - now, at}
end
local interval = tonumber(ARGV[1])
local at = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
redis.call('SET', KEYS[1], at + interval, 'PX', at + interval - now + 1000)
return {at - now, at}
"""


@lru_cache(maxsize=8)
def _scripts(r: redis.Redis) -> dict[str, Any]:
    return {name: r.register_script(src) for name, src in (("admit", _ADMIT), ("release", _RELEASE), ("rate", _RATE))}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- concurrency -------------------------------------------------------------------


def slot_base(circuit: str, tenant: str, value: str) -> str:
    """The Redis key prefix of one concurrency key; long values are hashed."""
    if len(value) > 100 or any(c in value for c in "\n\r\x00"):
        value = "sha1:" + hashlib.sha1(value.encode()).hexdigest()
    return f"circuit:limit:{circuit}:{tenant}:{value}"


def key_of(entry: Entry, ctx: dict[str, Any]) -> str:
    """The concurrency key's value for this run, from the event.

    Raises:
        PermanentError: the expression failed or gave nothing (None or empty).
    """
    conc = entry.circuit.trigger.concurrency
    assert conc is not None
    value = evaluate(conc.key, {"event": ctx["event"]})
    if value is None or value == "":
        raise PermanentError(f"concurrency key {conc.key!r} gave {value!r}; a run needs a key to be limited by")
    return slot_base(entry.name, str(ctx["run"].get("tenant", "default")), str(value))


def _run(rt: Runtime, script: str, entry: Entry, base: str, run_id: str) -> Any:
    conc = entry.circuit.trigger.concurrency
    assert conc is not None
    return _call(rt, script, base, run_id, conc.limit, entry.name)


def _call(rt: Runtime, script: str, base: str, run_id: str, limit: int, label: str) -> Any:
    s = rt.settings
    args = [
        run_id,
        limit,
        s.concurrency_lease_s,
        s.stall_after_s,
        recorder.done_key(""),
        recorder.END_FIELD,
        progress.CTX_FIELD,
        base,
        recorder.DONE_TTL_S,
        label,
    ]
    keys = [f"{base}:slots", f"{base}:queue", progress.ACTIVE, WAITING]
    return _scripts(rt.redis)[script](keys=keys, args=args)


# --- runs per tenant (governor, issue 8) -------------------------------------------

#: The WAITING label of a tenant's key (a circuit name cannot start with "@").
TENANT_LABEL = "@tenant"


def tenant_base(tenant: str) -> str:
    return f"circuit:tenant-runs:{tenant}"


def admit_tenant(rt: Runtime, ctx: dict[str, Any]) -> bool:
    """True when the run's tenant has a free run slot (always, without Redis, when unlimited);
    else the run waits in the tenant's queue and is started when a run of the tenant ends."""
    limit = rt.settings.governor_max_concurrent_runs
    if limit is None:
        return True
    run_id, tenant = ctx["run"]["id"], str(ctx["run"].get("tenant", "default"))
    state, others = _call(rt, "admit", tenant_base(tenant), run_id, limit, TENANT_LABEL)
    started = [_text(i) for i in others]
    _start_tenant_waiting(rt, [i for i in started if i != run_id])
    mine = _text(state) == "start" or run_id in started
    if not mine:
        log.info(
            "run %s waits for a run slot of tenant %s (CIRCUIT_GOVERNOR_MAX_CONCURRENT_RUNS=%d)", run_id, tenant, limit
        )
    return mine


def release_tenant(rt: Runtime, tenant: str, run_id: str = "") -> list[str]:
    limit = rt.settings.governor_max_concurrent_runs
    if limit is None:
        return []
    started = [_text(i) for i in _call(rt, "release", tenant_base(tenant), run_id, limit, TENANT_LABEL)]
    _start_tenant_waiting(rt, started)
    return started


def _start_tenant_waiting(rt: Runtime, run_ids: list[str]) -> None:
    """Runs that got a tenant slot go on to their own key's admission, then start."""
    for run_id in run_ids:
        ctx = progress.saved_context(rt.redis, run_id)
        entry = rt.catalog.entries.get(ctx["run"]["circuit"]) if ctx else None
        if ctx is None or entry is None:
            continue  # the watchdog ends it; its slot is reclaimed once it has ended
        if admit(rt, entry, ctx):
            log.info("run %s (%s) got its tenant's run slot; starting it", run_id, entry.name)
            progress.launch(entry.canvas, ctx, priority=progress.new_run_priority(entry.circuit.trigger.priority))


def admit(rt: Runtime, entry: Entry, ctx: dict[str, Any]) -> bool:
    """True when the run may start now; else it waits its turn (or failed: see below).

    A key that cannot be evaluated fails the run, recorded with the reason (``runs list
    --status failed`` shows it) and with the circuit's on_failure steps. Starting it
    unlimited would break the promise the limit makes (two runs on one account at once);
    dead-lettering the event would be wrong too, since the event is valid and may start
    other circuits. A circuit without ``concurrency`` is always admitted, without Redis.
    """
    if entry.circuit.trigger.concurrency is None:
        return True
    try:
        base = key_of(entry, ctx)
    except PermanentError as exc:
        _fail_unkeyed(rt, ctx, f"trigger.concurrency.key: {exc}")
        return False
    state, others = _run(rt, "admit", entry, base, ctx["run"]["id"])
    started = [_text(i) for i in others]
    _start_waiting(rt, entry, [i for i in started if i != ctx["run"]["id"]])
    mine = _text(state) == "start" or ctx["run"]["id"] in started
    if not mine:
        log.info("run %s (%s) waits for a slot of %s", ctx["run"]["id"], entry.name, base)
    return mine


def release(rt: Runtime, entry: Entry, base: str, run_id: str = "") -> list[str]:
    """Free ``run_id``'s slot (idempotent) and start the waiting runs that now fit; their ids."""
    started = [_text(i) for i in _run(rt, "release", entry, base, run_id)]
    _start_waiting(rt, entry, started)
    return started


def on_run_end(rt: Runtime, ctx: dict[str, Any]) -> None:
    """A run ended (succeeded, failed, cancelled): free its slot, start the next waiting run.

    The key is computed again from the event rather than carried in the context, so a run the
    watchdog resumed from its saved context frees its slot all the same. A Redis error is only
    logged: the slot is reclaimed from the run's recorded end by the next admit or sweep.
    """
    try:
        release_tenant(rt, str(ctx["run"].get("tenant", "default")), ctx["run"]["id"])
    except redis.RedisError as exc:
        log.warning("run %s: its tenant run slot is left to be reclaimed: %s", ctx["run"]["id"], exc)
    entry = rt.catalog.entries.get(ctx["run"]["circuit"])
    if entry is None or entry.circuit.trigger.concurrency is None:
        return
    try:
        release(rt, entry, key_of(entry, ctx), ctx["run"]["id"])
    except (PermanentError, redis.RedisError) as exc:
        log.warning("run %s: its concurrency slot is left to be reclaimed: %s", ctx["run"]["id"], exc)


def sweep(rt: Runtime) -> list[str]:
    """Start waiting runs whose key has a free slot nobody reported (for the watchdog's rounds)."""
    started: list[str] = []
    for raw_base, raw_circuit in rt.redis.hgetall(WAITING).items():
        base, circuit = _text(raw_base), _text(raw_circuit)
        if circuit == TENANT_LABEL:
            if rt.settings.governor_max_concurrent_runs is None:
                rt.redis.hdel(WAITING, base)  # the limit was lifted: start them all
                started += _release_all(rt, base)
            else:
                started += release_tenant(rt, base.removeprefix(tenant_base("")))
            continue
        entry = rt.catalog.entries.get(circuit)
        if entry is None or entry.circuit.trigger.concurrency is None:
            rt.redis.hdel(WAITING, base)
            continue
        started += release(rt, entry, base)
    return started


def _start_waiting(rt: Runtime, entry: Entry, run_ids: list[str]) -> None:
    """Send runs that got a slot, from their saved contexts; a lost send is resumed by the watchdog."""
    priority = progress.new_run_priority(entry.circuit.trigger.priority)
    for run_id in run_ids:
        ctx = progress.saved_context(rt.redis, run_id)
        if ctx is not None:
            log.info("run %s (%s) got its slot; starting it", run_id, entry.name)
            progress.launch(entry.canvas, ctx, priority=priority)


def _release_all(rt: Runtime, base: str) -> list[str]:
    ids = [_text(i) for i in rt.redis.lrange(f"{base}:queue", 0, -1)]
    rt.redis.delete(f"{base}:queue", f"{base}:slots")
    _start_tenant_waiting(rt, ids)
    return ids


def _fail_unkeyed(rt: Runtime, ctx: dict[str, Any], message: str) -> None:
    from workers.steps import start_on_failure  # steps imports this module

    run_id = ctx["run"]["id"]
    log.error("run %s (%s) failed: %s", run_id, ctx["run"]["circuit"], message)
    pipe = rt.redis.pipeline(transaction=True)
    pipe.set(recorder.failed_key(run_id), "(concurrency)", nx=True, ex=recorder.DONE_TTL_S)
    recorder.add_records(pipe, [recorder.run_end(run_id, "failed", error=message)])
    if pipe.execute()[0]:
        start_on_failure(ctx, "(concurrency)", message)
    release_tenant(rt, str(ctx["run"].get("tenant", "default")), run_id)


# --- rate limits -------------------------------------------------------------------


@lru_cache(maxsize=256)
def _rate(text: str) -> Rate:
    return parse_rate(text)


def bucket(action: str, rate: Rate, tenant: str) -> str:
    return f"circuit:rate:{action}:t:{tenant}" if rate.per_tenant else f"circuit:rate:{action}"


def acquire_rate(r: redis.Redis, key: str, rate: Rate, reserved_ms: int | None = None) -> tuple[float, int]:
    """Reserve the next instant of bucket ``key`` (or check a reservation made before).

    Returns the seconds to wait until the reserved instant (0 when it has come) and the
    instant itself, in Redis-clock milliseconds, to hand back with the re-sent message.
    """
    interval_ms = max(1, round(rate.interval_s * 1000))
    wait_ms, at = _scripts(r)["rate"](keys=[key], args=[interval_ms, "" if reserved_ms is None else reserved_ms])
    return int(wait_ms) / 1000, int(at)


def throttle(rt: Runtime, task: Task, ctx: dict[str, Any], step: dict[str, Any], action: str) -> None:
    """Return when the step may call its action now (at once if it has no rate limit); otherwise
    re-send it for its reserved instant and stop this execution.

    The reservation travels in the step payload (``rate_at``) together with the retry count
    it was made under, so a later failure retry reserves a new instant instead of reusing it.
    """
    if not step.get("rate_limit"):
        return
    rate = _rate(step["rate_limit"])
    held = step.get("rate_at") or {}
    reserved = held.get("at") if held.get("retries") == task.request.retries else None
    wait_s, at = acquire_rate(rt.redis, bucket(action, rate, ctx["run"].get("tenant", "default")), rate, reserved)
    if wait_s <= SLEEP_MAX_S:
        time.sleep(wait_s)
        return
    countdown = min(wait_s, HOP_MAX_S)
    run_id = ctx["run"]["id"]
    pipe = rt.redis.pipeline(transaction=False)
    pipe.delete(recorder.claim_key(run_id, step_key(ctx, step["id"])))  # not running: another copy may take it
    pipe.zadd(progress.ACTIVE, {run_id: time.time() + countdown + rt.settings.stall_after_s}, xx=True)
    pipe.execute()
    kwargs = {**task.request.kwargs, "step": {**step, "rate_at": {"at": at, "retries": task.request.retries}}}
    task.signature_from_request(task.request, task.request.args, kwargs, countdown=countdown).apply_async()
    message = f"rate limit {step['rate_limit']} of {action}: runs in {wait_s:.2f}s"
    raise Retry(message, when=countdown)
