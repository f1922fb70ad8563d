"""Record events through an outbox: written with the record, published after the commit.

Every write stages its event (``lead.created``, ``lead.updated``, ``lead.deleted``) as a
row of ``crm_outbox`` in the same transaction as the write, so a committed write always
has its event and a rolled-back write has none. After the commit the writer hands the
events to the publisher (the fast path) and marks them sent; :func:`sweep` publishes
rows that stayed unsent (a crash between commit and publish) and runs periodically.

The publisher is a hook: this package must not import the workers, so a worker
installs one at start with :func:`set_publisher` (``workers.outbox_relay`` hands each
envelope to ingest's ``accept``, which dedupes by event id). With no publisher set
(a test calling an action directly) the rows simply wait for a sweep.

Event ids of writes made by a run's step derive from (tenant, run id, step id, object,
record id, operation, position in the call), not the attempt: a retried or redelivered
step stages the same id, the outbox keeps the first (``ON CONFLICT DO NOTHING``) and
ingest drops a repeat, so the write's event is published once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from circuits.events import MAX_CHAIN, Event
from integrations.records.schema import OUTBOX

__all__ = ["Origin", "Publisher", "event_id", "relay", "set_publisher", "stage", "sweep"]

log = logging.getLogger(__name__)
EVENT_NAMESPACE = uuid.UUID("3b1e9d4c-4f0a-4c36-9b7e-2f7f4a8f1c55")
SOURCE = "circuit-os/records"

#: Takes one event envelope (JSON data) and hands it to the engine.
Publisher = Callable[[dict[str, Any]], Any]
_publisher: Publisher | None = None


def set_publisher(fn: Publisher | None) -> None:
    """Install the function that publishes record events (workers do this at start)."""
    global _publisher
    _publisher = fn


@dataclass(frozen=True)
class Origin:
    """Who writes: a run's step (ids make events idempotent), or a person/CLI (fresh ids).

    ``depth`` and ``chain`` are the chain depth and circuit names the emitted events carry.
    """

    source: str = SOURCE
    run_id: str | None = None
    step_id: str | None = None
    depth: int = 0
    chain: tuple[str, ...] = ()
    emit: bool = True  # False: write without events (a bulk load that should trigger nothing)

    @classmethod
    def of_step(cls, run_id: str, step_id: str, circuit: str, event: dict[str, Any]) -> Origin:
        """A write by a step: one hop deeper than the event that started its run."""
        depth = int(event.get("chaindepth") or 0) + 1
        chain = (*[str(c) for c in event.get("chain") or []], circuit)[-MAX_CHAIN:]
        return cls(run_id=run_id, step_id=step_id, depth=depth, chain=chain)


def event_id(origin: Origin, tenant: str, obj: str, record_id: str, op: str, index: int) -> str:
    """Attempt-independent for a step's write, so a retry stages the same event."""
    if origin.run_id is None:
        return str(uuid.uuid4())
    key = f"{tenant}/{origin.run_id}/{origin.step_id}/{obj}/{record_id}/{op}/{index}"
    return str(uuid.uuid5(EVENT_NAMESPACE, key))


def envelope(
    origin: Origin, tenant: str, obj: str, op: str, record_id: str, data: dict[str, Any], index: int
) -> dict[str, Any]:
    """The event of one write, validated as an :class:`Event` (its bounds apply)."""
    event = Event(
        id=event_id(origin, tenant, obj, record_id, op, index),
        source=origin.source,
        type=f"{obj}.{op}",
        subject=record_id,
        tenant=tenant,
        data=data,
        chaindepth=origin.depth,
        chain=list(origin.chain),
    )
    return event.model_dump(mode="json")


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(OUTBOX)


def stage(conn: Connection, events: Sequence[dict[str, Any]]) -> int:
    """Keep ``events`` in the outbox, inside the caller's transaction; returns how many were new.

    An id already there (a retried step's write) is left as it is, so its event goes out once.
    """
    if not events:
        return 0
    now = datetime.now(UTC)
    rows = [
        {"id": e["id"], "tenant": e["tenant"], "type": e["type"], "subject": e.get("subject"), "envelope": e}
        for e in events
    ]
    stmt = _insert(conn).on_conflict_do_nothing(index_elements=["id"])
    # one statement per row: an executemany's rowcount is not reliable on every driver
    return sum(int(conn.execute(stmt, {**row, "created_at": now, "sent_at": None}).rowcount) for row in rows)


def _mark_sent(engine: Engine, ids: Sequence[str]) -> None:
    if ids:
        with engine.begin() as conn:
            conn.execute(
                sa.update(OUTBOX).where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.sent_at.is_(None)),
                {"sent_at": datetime.now(UTC)},
            )


def _publish(events: Sequence[dict[str, Any]], publisher: Publisher) -> list[str]:
    sent = []
    for event in events:
        try:
            publisher(event)
        except Exception:  # noqa: BLE001 - the sweep publishes it later; the write itself is committed
            log.warning("publishing record event %s failed; the outbox sweep will retry", event["id"], exc_info=True)
            break
        sent.append(event["id"])
    return sent


def relay(engine: Engine, events: Sequence[dict[str, Any]], publisher: Publisher | None = None) -> int:
    """Fast path, right after the commit: publish ``events`` and mark them sent. Never raises."""
    publisher = publisher or _publisher
    if publisher is None or not events:
        return 0
    sent = _publish(events, publisher)
    try:
        _mark_sent(engine, sent)
    except sa.exc.SQLAlchemyError:
        log.warning("marking %d record events sent failed; a sweep may send them again (deduped)", len(sent))
    return len(sent)


def sweep(
    engine: Engine,
    publisher: Publisher | None = None,
    *,
    older_than_s: float = 10.0,
    batch: int = 500,
    keep_s: float | None = None,
) -> int:
    """Publish outbox rows left unsent for ``older_than_s`` (oldest first); returns how many.

    Several workers may sweep at once: ingest dedupes event ids, so a row published
    twice starts its runs once. Sent rows older than ``keep_s`` are deleted.
    """
    publisher = publisher or _publisher
    if publisher is None:
        return 0
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.envelope)
            .where(OUTBOX.c.sent_at.is_(None), OUTBOX.c.created_at <= now - timedelta(seconds=older_than_s))
            .order_by(OUTBOX.c.created_at)
            .limit(batch)
        ).fetchall()
    events = [dict(r.envelope) for r in rows]
    sent = _publish(events, publisher)
    _mark_sent(engine, sent)
    if keep_s is not None:
        with engine.begin() as conn:
            conn.execute(sa.delete(OUTBOX).where(OUTBOX.c.sent_at < now - timedelta(seconds=keep_s)))
    if sent:
        log.info("outbox sweep published %d record event(s) left unsent", len(sent))
    return len(sent)


def unsent(engine: Engine, limit: int = 1000) -> list[dict[str, Any]]:
    """Envelopes still waiting in the outbox, oldest first (for tests and the CLI)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.envelope).where(OUTBOX.c.sent_at.is_(None)).order_by(OUTBOX.c.created_at).limit(limit)
        ).fetchall()
    return [dict(r.envelope) for r in rows]
