"""Stateful triggers: threshold, count, all_of, any_of, sequence and absence.

Their state lives in Redis per circuit, tenant and key (``trigger.key``, the lead by default),
with TTLs, and every decision is one Lua script, so a condition fires exactly once however
many ingest processes and workers see the events. When a trigger fires, it makes a *trigger
event* of its own (type ``trigger.<kind>``, subject the key, data saying what happened: the
events that made it fire, the value that crossed) with an id derived from what fired it, and
starts the circuit with that event: the engine's event dedupe makes a repeat start nothing.

Absence is a timer: the ``after`` event puts a deadline in ``circuit:absence:due``; the
``expect`` event for the same key removes it; the watchdog fires those that come due.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from circuits.catalog import Entry
from circuits.errors import PermanentError
from circuits.events import Event
from circuits.expressions import evaluate
from workers.runtime import Runtime

log = logging.getLogger(__name__)
ABSENCE_DUE = "circuit:absence:due"
ABSENCE_EVENTS = "circuit:absence:events"

_THRESHOLD = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local v, level, p = tonumber(ARGV[2]), tonumber(ARGV[3]), prev and tonumber(prev)
local crossed
if ARGV[4] == 'up' then crossed = v >= level and (p == nil or p < level)
else crossed = v <= level and (p == nil or p > level) end
if crossed then return {1, prev or ''} end
return {0, prev or ''}
"""

_COUNT = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local all = redis.call('ZRANGE', KEYS[1], 0, -1)
  redis.call('DEL', KEYS[1])
  return all
end
return {}
"""

_ALL_OF = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local got = {}
for i, t in ipairs(cjson.decode(ARGV[6])) do
  local v = redis.call('HGET', KEYS[1], t)
  if not v then return {} end
  if tonumber(cjson.decode(v)['ts']) < tonumber(ARGV[3]) - tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], t)
    return {}
  end
  got[i] = v
end
redis.call('DEL', KEYS[1])
return got
"""

_SEQUENCE = """
local need = cjson.decode(ARGV[6])
local now, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local pos = tonumber(redis.call('HGET', KEYS[1], 'pos') or '0')
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or '0')
if pos > 0 and now - start > window then pos = 0 end
if ARGV[1] == need[pos + 1] then
  if pos == 0 then redis.call('DEL', KEYS[1]); redis.call('HSET', KEYS[1], 'start', now) end
  pos = pos + 1
  redis.call('HSET', KEYS[1], 'pos', pos, 'e' .. pos, ARGV[2])
elseif ARGV[1] == need[1] then
  redis.call('DEL', KEYS[1])
  pos = 1
  redis.call('HSET', KEYS[1], 'pos', 1, 'start', now, 'e1', ARGV[2])
else
  return {}
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
if pos == #need then
  local got = {}
  for i = 1, #need do got[i] = redis.call('HGET', KEYS[1], 'e' .. i) end
  redis.call('DEL', KEYS[1])
  return got
end
return {}
"""

_ABSENCE_CANCEL = """
local open = redis.call('SMEMBERS', KEYS[1])
for _, m in ipairs(open) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('HDEL', KEYS[3], m)
end
redis.call('DEL', KEYS[1])
return #open
"""


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _brief(event: Event, event_ctx: dict[str, Any]) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "ts": event.time.timestamp(), "data": event_ctx["data"]}


class Triggers:
    """The stateful triggers of the deployed circuits, on one Redis."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        r = rt.redis
        self.threshold = r.register_script(_THRESHOLD)
        self.count = r.register_script(_COUNT)
        self.all_of = r.register_script(_ALL_OF)
        self.sequence = r.register_script(_SEQUENCE)
        self.absence_cancel = r.register_script(_ABSENCE_CANCEL)
        self.entries = [e for e in rt.catalog.entries.values() if e.circuit.trigger.stateful]

    def observe(self, event: Event, event_ctx: dict[str, Any]) -> list[tuple[Entry, Event]]:
        """Feed one accepted event to every stateful trigger that reads it; return what fired."""
        fired = []
        for entry in self.entries:
            try:
                if not entry.observes(event.type, event_ctx):
                    continue
                key = evaluate(entry.circuit.trigger.key, {"event": event_ctx})
            except PermanentError as exc:
                log.warning("circuit %s: trigger not fed event %s: %s", entry.name, event.id, exc)
                continue
            if key is None or key == "":
                log.info(
                    "circuit %s: event %s has no key (%s); ignored", entry.name, event.id, entry.circuit.trigger.key
                )
                continue
            data = self._feed(entry, event, event_ctx, key)
            if data is not None:
                fired.append((entry, self._trigger_event(entry, event, key, data)))
        return fired

    def _state(self, entry: Entry, tenant: str, key: Any) -> str:
        return f"circuit:trigger:{entry.name}:{tenant}:{_digest(key)}"

    def _feed(self, entry: Entry, event: Event, event_ctx: dict[str, Any], key: Any) -> dict[str, Any] | None:
        t = entry.circuit.trigger
        state = self._state(entry, event.tenant, key)
        now = event.time.timestamp()
        brief = json.dumps(_brief(event, event_ctx), default=str)
        if t.threshold:
            try:
                value = float(evaluate(t.threshold.value, {"event": event_ctx}))
            except (PermanentError, TypeError, ValueError) as exc:
                log.warning("circuit %s: threshold value of event %s: %s", entry.name, event.id, exc)
                return None
            ttl = 90 * 86400
            crossed, prev = self.threshold(
                keys=[state], args=["v", repr(value), t.threshold.level, t.threshold.direction, ttl]
            )
            if not crossed:
                return None
            previous = float(prev) if prev else None
            return {
                "key": key,
                "value": value,
                "previous": previous,
                "level": t.threshold.level,
                "event": _brief(event, event_ctx),
            }
        if t.count:
            found = self.count(
                keys=[state], args=[now, t.count.within_s, t.count.at_least, brief, int(t.count.within_s) + 60]
            )
            return {"key": key, "count": len(found), "events": [json.loads(e) for e in found]} if found else None
        if t.all_of or t.sequence:
            script = self.all_of if t.all_of else self.sequence
            need = json.dumps(t.all_of or t.sequence)
            found = script(keys=[state], args=[event.type, brief, now, t.within_s, int(t.within_s or 0) + 60, need])
            return {"key": key, "events": [json.loads(e) for e in found]} if found else None
        if t.any_of:
            first = self.rt.redis.set(state, brief, nx=True, px=int((t.within_s or 0) * 1000))
            return {"key": key, "events": [_brief(event, event_ctx)]} if first else None
        assert t.absence is not None
        return self._absence(entry, event, event_ctx, key, brief)

    def _absence(self, entry: Entry, event: Event, event_ctx: dict[str, Any], key: Any, brief: str) -> None:
        t = entry.circuit.trigger
        assert t.absence is not None
        open_set = f"{self._state(entry, event.tenant, key)}:open"
        if event.type == t.absence.expect:
            self.absence_cancel(keys=[open_set, ABSENCE_DUE, ABSENCE_EVENTS])
            return None
        member = json.dumps([entry.name, event.tenant, key, event.id])
        pipe = self.rt.redis.pipeline(transaction=True)
        pipe.zadd(ABSENCE_DUE, {member: time.time() + t.absence.within_s}, nx=True)
        pipe.hset(ABSENCE_EVENTS, member, brief)
        pipe.sadd(open_set, member)
        pipe.expire(open_set, int(t.absence.within_s) + 3600)
        pipe.execute()
        return None

    def due_absences(self, limit: int = 100) -> list[tuple[Entry, Event]]:
        """Absences whose time ran out; each is returned to exactly one caller."""
        r = self.rt.redis
        out = []
        for raw in r.zrangebyscore(ABSENCE_DUE, "-inf", time.time(), start=0, num=limit):
            if not r.zrem(ABSENCE_DUE, raw):
                continue  # another watchdog took it, or the expected event came
            name, tenant, key, event_id = json.loads(raw)
            after = json.loads(r.hget(ABSENCE_EVENTS, raw) or "null")
            r.hdel(ABSENCE_EVENTS, raw)
            entry = self.rt.catalog.entries.get(name)
            if entry is None or entry.circuit.trigger.absence is None:
                continue
            a = entry.circuit.trigger.absence
            data = {"key": key, "after": after, "missing": a.expect, "within_s": a.within_s}
            event = Event(
                id=f"trg:{name}:absence:{_digest(tenant, event_id)}",
                source="circuit-os/trigger",
                type="trigger.absence",
                subject=str(key),
                tenant=tenant,
                data=data,
            )
            out.append((entry, event))
        return out

    def _trigger_event(self, entry: Entry, event: Event, key: Any, data: dict[str, Any]) -> Event:
        kind = entry.circuit.trigger.kind
        return Event(
            id=f"trg:{entry.name}:{kind}:{_digest(event.tenant, key, event.id)}",
            source="circuit-os/trigger",
            type=f"trigger.{kind.replace('_', '-')}",
            subject=str(key),
            tenant=event.tenant,
            data=data,
        )
