"""Publishing events from Python: validate here, accept in a worker.

A producer needs only Redis: the event is checked locally (a malformed one raises
:class:`EventError` naming the field, and is kept as a dead letter) and handed to
the ``circuit.ingest`` task on the ``events`` queue, where a worker dedupes it,
matches circuits and starts their runs. With ``CIRCUIT_PUBLISH_MODE=direct`` the
producer does that itself, saving a hop, at the price of loading the circuits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from circuits.errors import EventError
from circuits.events import Event, parse_event
from workers.ingest import accept, reject
from workers.runtime import runtime


def publish(
    type: str,
    data: Any = None,
    *,
    source: str = "circuit-os/python",
    subject: str | None = None,
    id: str | None = None,
    tenant: str = "default",
    idempotency_key: str | None = None,
    time: datetime | None = None,
) -> Event:
    """Publish one event; returns the validated envelope (its ``id`` finds the runs later)."""
    envelope: dict[str, Any] = {"type": type, "source": source, "data": data, "tenant": tenant}
    for key, value in (("subject", subject), ("id", id), ("idempotencykey", idempotency_key), ("time", time)):
        if value is not None:
            envelope[key] = value
    return publish_envelope(envelope, origin="publish")


def publish_envelope(envelope: dict[str, Any] | str | bytes, origin: str = "publish") -> Event:
    """Publish an already-built envelope (the CLI's path)."""
    rt = runtime()
    try:
        event = parse_event(envelope, rt.settings.event_max_bytes)
    except EventError as exc:
        reject(rt, envelope if not isinstance(envelope, dict) else dict(envelope), exc, origin)
        raise
    if rt.settings.publish_mode == "stream":
        rt.redis.xadd(rt.settings.event_stream, {"event": event.to_json()})
    elif rt.settings.publish_mode == "direct":
        accept(rt, event)
    else:
        from workers.app import app

        app.send_task("circuit.ingest", args=[event.model_dump(mode="json")], queue="events")
    return event
