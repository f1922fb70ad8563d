"""``circuit-os ingest``: events XADDed to a Redis Stream by producers in any language.

Entry format: one field ``event`` holding the JSON envelope::

    XADD circuit:events * event '{"type":"lead.created","source":"web","data":{"email":"a@b.c"}}'
"""

from __future__ import annotations

from circuits.errors import EventError
from workers.ingest import accept_isolated, reject
from workers.runtime import Runtime
from workers.streams import Entry, StreamConsumer


class StreamIngest(StreamConsumer):
    def __init__(self, rt: Runtime) -> None:
        # entries a dead ingest left pending are taken over after 15 s: taking over a live one's
        # is harmless (accept dedupes event ids and re-sends only runs that have not ended)
        super().__init__(rt.redis, rt.settings.event_stream, "ingest", batch=100, claim_idle_ms=15_000)
        self.rt = rt

    def handle(self, entries: list[Entry], *, reclaimed: bool) -> None:
        for _, fields in entries:
            raw = fields.get(b"event")
            if raw is None:
                keys = ", ".join(k.decode("utf-8", "replace") for k in fields)
                reject(
                    self.rt,
                    {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()},
                    EventError(
                        f"stream entry needs a field 'event' holding the JSON envelope; it has {keys}", field="(entry)"
                    ),
                    "stream",
                )
                continue
            accept_isolated(self.rt, raw, origin="stream", reclaimed=reclaimed)
