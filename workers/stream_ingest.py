"""Events from the Redis Stream: ``publish()`` puts them there (the default), and so can producers
in any language. Each worker starts a reader beside its pool; ``circuit-os ingest`` runs one alone.
Batches are read as one consumer group, so readers on many hosts share the work.

Entry format: one field ``event`` holding the JSON envelope::

    XADD circuit:events * event '{"type":"lead.created","source":"web","data":{"email":"a@b.c"}}'
"""

from __future__ import annotations

import logging
import signal
import subprocess
from typing import Any

from circuits.errors import EventError
from workers import children, metrics
from workers.ingest import accept_batch, reject
from workers.runtime import Runtime
from workers.streams import Entry, StreamConsumer


class StreamIngest(StreamConsumer):
    def __init__(self, rt: Runtime) -> None:
        # entries a dead ingest left pending are taken over after 15 s: taking over a live one's
        # is harmless (accept dedupes event ids and re-sends only runs that have not ended).
        # 250 a batch: fewer round trips, and a hot lead sent before the rest of its batch, while a
        # batch of the largest events (CIRCUIT_EVENT_MAX_BYTES each) stays bounded in memory
        super().__init__(rt.redis, rt.settings.event_stream, "ingest", batch=250, claim_idle_ms=15_000)
        self.rt = rt

    def handle(self, entries: list[Entry], *, reclaimed: bool) -> None:
        raws = []
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
            raws.append(raw)
        if raws:
            accept_batch(self.rt, raws, origin="stream", reclaimed=reclaimed)


def spawn() -> subprocess.Popen[Any]:
    """Start a stream reader beside a worker's pool (CIRCUIT_INGEST_IN_WORKER), exiting with it."""
    return children.spawn("workers.stream_ingest")


def main() -> None:
    import argparse

    from workers.runtime import runtime

    parser = argparse.ArgumentParser(description="Read published events from the Redis stream and start runs.")
    parser.add_argument("--parent", type=int, help="Exit when this process is gone.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/ingest] %(message)s")
    rt = runtime()
    metrics.join_worker()  # beside a worker with CIRCUIT_METRICS_PORT: its events count in the worker's /metrics
    rt.catalog  # noqa: B018 - fail now on a broken catalogue, not at the first event
    consumer = StreamIngest(rt)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    signal.signal(signal.SIGINT, lambda *_: consumer.stop())
    if args.parent:  # started by a worker: one reader per host works, the others stand by
        children.watch_parent(args.parent, consumer.stop, "event stream reader")
        stream = f"{rt.settings.redis_url} {rt.settings.event_stream}"
        if not children.one_per_host("event stream reader", stream, consumer.stopping):
            return
    consumer.run()


if __name__ == "__main__":
    main()
