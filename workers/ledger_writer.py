"""Moves ledger records from the Redis stream into SQL, a batch per transaction.

It runs in a process of its own (``python -m workers.ledger_writer``, started by
each worker unless CIRCUIT_LEDGER_IN_WORKER=false, or by ``circuit-os ledger``):
in the worker's main process it would compete for the GIL with Celery's consumer loop.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
from typing import Any

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from storage.ledger import apply_batch
from workers import children
from workers.recorder import LEDGER_STREAM
from workers.streams import Entry, StreamConsumer

log = logging.getLogger(__name__)


DEAD_LETTERS = "circuit:ledger:dead"


def is_outage(exc: BaseException) -> bool:
    """The database is away (connection refused, dropped, shutting down), as opposed to refusing a record."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class LedgerWriter(StreamConsumer):
    """Writes batches; finds and sets aside a record the database refuses, never one it could not reach.

    While the database is away, ``handle`` raises: the batch stays pending in the stream and
    the consumer loop retries it with backoff, so nothing is dropped or acknowledged unwritten.
    """

    def __init__(self, r: redis.Redis, engine: Engine, *, batch: int = 500) -> None:
        # lingering between transactions turns a stream of records into batches of hundreds under load:
        # measured 0.9 ms of CPU per record with no linger, for 500 runs of 5 steps; the writer and
        # PostgreSQL took 0.99 s per 1,000 five-step runs at 0.1 s, 0.69 s at 0.3 s. The linger grows with
        # the batch (workers.streams), so a run's few records under light load are written at once. It
        # is 20 ms at least: a trickle of runs (one every 10 ms) then shares a transaction or two, and
        # the writer no longer wakes PostgreSQL for every run in the milliseconds its first step starts
        # in (publish to first step p50 4.4 ms against 5.1 ms, three runs each, 2 cores)
        super().__init__(r, LEDGER_STREAM, "ledger", batch=batch, claim_idle_ms=30_000, linger_s=0.3, min_linger_s=0.02)
        self.engine = engine

    def is_outage(self, exc: BaseException) -> bool:
        return is_outage(exc)

    def handle(self, entries: list[Entry], *, reclaimed: bool) -> None:
        records: list[dict[str, Any]] = []
        for _, fields in entries:
            try:
                records.append(json.loads(fields[b"r"]))
            except (KeyError, ValueError) as exc:
                self._dead_letter(fields.get(b"r", repr(fields).encode()), f"not a ledger record: {exc}")
        self._apply(records)

    def _apply(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        try:
            apply_batch(self.engine, records)
        except (SQLAlchemyError, KeyError, TypeError, ValueError) as exc:
            if is_outage(exc):
                raise
            if len(records) == 1:
                log.error("ledger record refused by the database, kept as a dead letter: %s", exc)
                self._dead_letter(json.dumps(records[0], default=str).encode(), f"{type(exc).__name__}: {exc}")
                return
            # halve until the bad record is alone; the good ones are written on the way
            half = len(records) // 2
            self._apply(records[:half])
            self._apply(records[half:])

    def _dead_letter(self, raw: bytes, reason: str) -> None:
        """Keep a refused record in Redis (``circuit:ledger:dead``) with its reason, for an operator to read."""
        self.r.xadd(DEAD_LETTERS, {"r": raw, "error": reason[:2000]}, maxlen=100_000, approximate=True)


def spawn() -> subprocess.Popen[Any]:
    """Start the writer as a child process that exits when its parent does."""
    return children.spawn("workers.ledger_writer")


def main() -> None:
    import argparse

    from workers.runtime import runtime

    parser = argparse.ArgumentParser(description="Write the run ledger from Redis to SQL.")
    parser.add_argument("--parent", type=int, help="Exit when this process is gone.")
    parser.add_argument("--max-seconds", type=float)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/ledger] %(message)s")
    rt = runtime()
    writer = LedgerWriter(rt.redis, rt.engine, batch=rt.settings.ledger_batch)
    signal.signal(signal.SIGTERM, lambda *_: writer.stop())
    signal.signal(signal.SIGINT, lambda *_: writer.stop())
    if args.parent:  # started by a worker: one writer per host works, the others stand by
        children.watch_parent(args.parent, writer.stop, "ledger writer")
        if not children.one_per_host("ledger writer", rt.settings.redis_url, writer.stopping):
            return
    writer.run(max_seconds=args.max_seconds)
    writer.drain(timeout_s=5)


if __name__ == "__main__":
    main()
