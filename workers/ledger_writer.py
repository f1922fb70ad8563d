"""Moves ledger records from the Redis stream into SQL, a batch per transaction.

It runs in a process of its own (``python -m workers.ledger_writer``, started by
each worker unless CIRCUIT_LEDGER_IN_WORKER=false, or by ``circuit-os ledger``):
in the worker's main process it would compete for the GIL with Celery's consumer loop.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from storage.ledger import apply_batch
from workers.recorder import LEDGER_STREAM
from workers.streams import Entry, StreamConsumer

log = logging.getLogger(__name__)


class LedgerWriter(StreamConsumer):
    def __init__(self, r: redis.Redis, engine: Engine, *, batch: int = 500) -> None:
        # lingering 0.1 s between transactions turns a trickle of records into batches of hundreds under
        # load: measured 0.9 ms of CPU per record without it, for 500 runs of 5 steps
        super().__init__(r, LEDGER_STREAM, "ledger", batch=batch, claim_idle_ms=30_000, linger_s=0.1)
        self.engine = engine

    def handle(self, entries: list[Entry], *, reclaimed: bool) -> None:
        records = [json.loads(fields[b"r"]) for _, fields in entries]
        try:
            apply_batch(self.engine, records)
        except SQLAlchemyError:
            if len(records) == 1:
                raise
            # find the bad record without holding back the good ones
            log.warning("ledger batch of %d failed; writing one by one", len(records))
            for rec in records:
                try:
                    apply_batch(self.engine, [rec])
                except SQLAlchemyError as exc:
                    log.error("dropping a ledger record the database refuses: %s (%s)", rec, exc)


def spawn() -> subprocess.Popen[Any]:
    """Start the writer as a child process that exits when its parent does."""
    return subprocess.Popen(
        [sys.executable, "-m", "workers.ledger_writer", "--parent", str(os.getpid())], env=os.environ.copy()
    )


def _watch_parent(parent: int, writer: LedgerWriter) -> None:
    while not writer.stopping.wait(1.0):
        if os.getppid() != parent:
            log.warning("the worker that started the ledger writer is gone; stopping")
            writer.stop()


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
    if args.parent:
        threading.Thread(target=_watch_parent, args=(args.parent, writer), daemon=True).start()
    writer.run(max_seconds=args.max_seconds)
    writer.drain(timeout_s=5)


if __name__ == "__main__":
    main()
