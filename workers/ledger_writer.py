"""Moves ledger records from the Redis stream into SQL, a batch per transaction."""

from __future__ import annotations

import json
import logging
import threading

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from storage.ledger import apply_batch
from workers.recorder import LEDGER_STREAM
from workers.streams import Entry, StreamConsumer

log = logging.getLogger(__name__)


class LedgerWriter(StreamConsumer):
    def __init__(self, r: redis.Redis, engine: Engine, *, batch: int = 500) -> None:
        super().__init__(r, LEDGER_STREAM, "ledger", batch=batch, claim_idle_ms=30_000)
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


def start_in_thread(r: redis.Redis, engine: Engine, batch: int = 500) -> tuple[LedgerWriter, threading.Thread]:
    writer = LedgerWriter(r, engine, batch=batch)
    thread = threading.Thread(target=writer.run, name="circuit-ledger", daemon=True)
    thread.start()
    return writer, thread
