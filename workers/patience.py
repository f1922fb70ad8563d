"""Waiting out a Redis restart instead of failing the step that already did its work.

A step whose action has run must record its output; if Redis is restarting, failing
there would strand the run (the action ran, nothing continues it). So Redis calls
on that path are retried with backoff for up to ``CIRCUIT_REDIS_WAIT_S``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger(__name__)
T = TypeVar("T")
OUTAGE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError)


def patient(fn: Callable[[], T], budget_s: float, what: str = "Redis call") -> T:
    """``fn()``, retried while Redis is unreachable or loading, for at most ``budget_s`` seconds."""
    deadline = time.monotonic() + budget_s
    delay = 0.1
    while True:
        try:
            return fn()
        except OUTAGE as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: Redis unavailable (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
