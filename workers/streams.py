"""A Redis Streams consumer-group loop, shared by the ledger writer and the event ingester.

Entries are acknowledged (and deleted) only after ``handle`` returns for the
whole batch; entries left pending by a consumer that died are reclaimed with
XAUTOCLAIM after ``claim_idle_ms`` and handed over with ``reclaimed=True``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod

import redis

log = logging.getLogger(__name__)
Entry = tuple[bytes, dict[bytes, bytes]]


class StreamConsumer(ABC):
    """Read ``stream`` as one consumer of ``group``; subclasses say what to do with a batch."""

    def __init__(
        self,
        r: redis.Redis,
        stream: str,
        group: str,
        *,
        batch: int = 500,
        block_ms: int = 200,
        claim_idle_ms: int = 60_000,
        linger_s: float = 0.0,
        min_linger_s: float = 0.0,
    ) -> None:
        self.r = r
        self.stream = stream
        self.group = group
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.linger_s = linger_s  # wait up to this long after a batch, so the next one is bigger
        self.min_linger_s = min_linger_s  # and at least this long, however small the batch
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 10000}"
        self.stopping = threading.Event()
        self._last_claim = 0.0
        self._own_pending = True  # a batch of ours may be pending (at start, and after a failed batch)

    @abstractmethod
    def handle(self, entries: list[Entry], *, reclaimed: bool) -> None:
        """Process a batch; raise to leave it pending (it is retried)."""

    def is_outage(self, exc: BaseException) -> bool:
        """True for an error that means a service is away (waited for quietly), not a bad batch."""
        return False

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll(self) -> int:
        """One round: reclaim what others left pending, then read new entries. Returns entries handled."""
        handled = 0
        now = time.monotonic()
        if now - self._last_claim > self.claim_idle_ms / 2000:
            self._last_claim = now
            claimed = self.r.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
            )[1]
            if claimed:
                handled += self._process([e for e in claimed if e[1]], reclaimed=True)
        # our own pending entries first (a batch that failed), then new ones; ours are read only when
        # one may be pending: a round trip less per batch, and none while a trickle waits for entries
        for start, block in (("0", None), (">", self.block_ms)):
            if start == "0" and not self._own_pending:
                continue
            resp = self.r.xreadgroup(self.group, self.consumer, {self.stream: start}, count=self.batch, block=block)
            entries = [e for _, items in resp or [] for e in items if e[1]]
            if entries:
                handled += self._process(entries, reclaimed=start == "0")
                break
            if start == "0":
                self._own_pending = False
        return handled

    def _process(self, entries: list[Entry], *, reclaimed: bool) -> int:
        try:
            self.handle(entries, reclaimed=reclaimed)
            ids = [e[0] for e in entries]
            pipe = self.r.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()
        except BaseException:
            self._own_pending = True  # left pending: read again first
            raise
        return len(entries)

    def run(self, max_seconds: float | None = None) -> None:
        """Loop until :meth:`stop` (or ``max_seconds``), backing off on errors without losing entries."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        delay = 0.5
        while not self.stopping.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                self.ensure_group()
                while not self.stopping.is_set() and (deadline is None or time.monotonic() < deadline):
                    handled = self.poll()
                    if handled and self.linger_s:
                        self.stopping.wait(self.linger_for(handled))
                    delay = 0.5
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("%s: Redis unavailable (%s); retrying in %.1fs", self.group, exc, delay)
            except Exception as exc:  # noqa: BLE001 - the loop must survive a bad batch
                if self.is_outage(exc):
                    log.warning(
                        "%s: %s unavailable; the batch stays pending, retrying in %.1fs",
                        self.group,
                        type(exc).__name__,
                        delay,
                    )
                else:
                    log.exception("%s: batch failed; it stays pending and is retried in %.1fs", self.group, delay)
            self.stopping.wait(delay)
            delay = min(delay * 2, 10.0)

    def linger_for(self, handled: int) -> float:
        """The wait after a batch of ``handled`` entries: ``linger_s`` once batches are half full, less
        in proportion below that, never under ``min_linger_s``. Under load the batches grow to fill the
        wait; the first entries after a quiet spell are handled without delay."""
        return max(self.min_linger_s, self.linger_s * min(1.0, handled / max(1, self.batch // 2)))

    def stop(self) -> None:
        self.stopping.set()

    def drain(self, timeout_s: float = 10.0) -> None:
        """Handle everything currently in the stream (CLI, demo, tests)."""
        self.ensure_group()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.poll():
                continue
            info = next(g for g in self.r.xinfo_groups(self.stream) if g["name"] in (self.group, self.group.encode()))
            if not info.get("pending") and not info.get("lag"):
                return
