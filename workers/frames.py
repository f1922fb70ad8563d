"""Loop frames: a foreach's context is stored once, not carried by every item's message.

An item of a ``foreach`` sees the whole run context (the event, the outputs of the steps
before the loop, the variables). Carried in each item's message, that context made a loop's
traffic grow with items x context: a foreach over a 1,000-entry list taken from the event
sent the list 1,000 times, and each item's result brought it back to the batch's join.

So the loop stores its context once in Redis (its *frame*, written before any item's message
and kept as long as the run's done marks), and an item's message carries only the run's ids,
the loop (item, index, frame name) and the outputs of the body's own steps: a *slim* context
(``{"run", "loop", "steps", "frame"}``). A task that receives one rebuilds the full context
(:func:`full`) before it reads anything; a task sending or returning a context inside a loop
slims it again (:func:`slim`). Slimming is only a size saving: a full context is always
accepted, so a path that sends one is larger, never wrong.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, TypeVar, cast

import redis

from circuits.errors import CircuitError
from workers.recorder import DONE_TTL_S

#: Frames a process keeps (as text), at most this many bytes of them, the newest always: a worker runs
#: the items of a few loops at a time, and a frame can be a 256 KB event plus 64 KB per earlier step.
CACHE_BYTES = 16 * 1024 * 1024

C = TypeVar("C")
_cache: OrderedDict[str, tuple[bytes, frozenset[str]]] = OrderedDict()
_cached_bytes = 0
_lock = threading.Lock()


class FrameMissing(CircuitError):
    """A loop item's context refers to a frame Redis no longer holds (expired or lost with its data).

    The item's task fails; the run stops moving, so the watchdog resumes it from its saved context,
    and its loop stores the frame again (its finished items return their stored outputs)."""


def frame_key(run_id: str, loop_key: str) -> str:
    """The frame of the loop ``loop_key`` (its step key: inside another loop, prefixed by that item)."""
    return f"circuit:frame:{run_id}:{loop_key}"


def store(r: redis.Redis, name: str, ctx: dict[str, Any]) -> None:
    """Keep ``ctx`` (the context a loop's items share) as frame ``name``, for as long as the run's done
    marks. A loop's later batches find it there and only renew it: a frame may be large (it holds the
    event), and one batch of two items should not send it again."""
    if not r.expire(name, DONE_TTL_S):
        shared = {k: v for k, v in ctx.items() if k not in ("run", "loop")}
        text = json.dumps(shared, separators=(",", ":"), default=str)
        r.set(name, text, ex=DONE_TTL_S)
        _remember(name, text.encode(), frozenset(ctx.get("steps") or ()))


def _remember(name: str, text: bytes, step_ids: frozenset[str]) -> None:
    global _cached_bytes
    with _lock:
        old = _cache.pop(name, None)
        _cached_bytes -= len(old[0]) if old else 0
        _cache[name] = (text, step_ids)
        _cached_bytes += len(text)
        while _cached_bytes > CACHE_BYTES and len(_cache) > 1:
            _cached_bytes -= len(_cache.popitem(last=False)[1][0])


def _load(r: redis.Redis, name: str) -> bytes:
    with _lock:
        hit = _cache.get(name)
    if hit is not None:
        return hit[0]
    text = cast(bytes | None, r.get(name))
    if text is None:
        raise FrameMissing(f"the loop context {name!r} is gone from Redis (expired or lost); the run cannot go on")
    _remember(name, text, frozenset(json.loads(text).get("steps") or ()))
    return text


def full(r: redis.Redis, ctx: dict[str, Any]) -> dict[str, Any]:
    """The whole context of a slim one (a fresh copy each time: actions may change what they get);
    any other context as it is."""
    name = ctx.get("frame")
    if not isinstance(name, str):
        return ctx
    frame: dict[str, Any] = json.loads(_load(r, name))
    frame["steps"] = {**(frame.get("steps") or {}), **ctx.get("steps", {})}
    frame["run"] = ctx["run"]
    frame["loop"] = ctx.get("loop")
    return frame


def slim(ctx: C) -> C:
    """The context to send or return: inside a loop whose frame this process knows, only what the
    frame does not hold; anything else as it is."""
    if not isinstance(ctx, dict) or "frame" in ctx:
        return ctx
    name = (ctx.get("loop") or {}).get("frame")
    if not isinstance(name, str):
        return ctx
    with _lock:
        hit = _cache.get(name)
    if hit is None:
        return ctx
    in_frame = hit[1]
    steps = {k: v for k, v in ctx["steps"].items() if k not in in_frame}
    return cast(C, {"run": ctx["run"], "loop": ctx["loop"], "steps": steps, "frame": name})


def item(name: str, run: dict[str, Any], loop: dict[str, Any]) -> dict[str, Any]:
    """The slim context of one loop item: its own steps start empty."""
    return {"run": run, "loop": loop, "steps": {}, "frame": name}
