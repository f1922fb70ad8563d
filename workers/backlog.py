"""How far behind the system is, read from Redis: queue depths, the age of the oldest waiting
message, and the lag of ingest and of the ledger. One pipelined round trip; read by the metrics
collector at scrape time and by ``circuit-os status``.

kombu's Redis transport keeps one list per priority step of a queue, pushes on the left and
pops on the right, so a list's oldest message is its last element. A message carries the time
it was sent in the ``circuit_sent`` header (set by :mod:`workers.tagging` on every publish); one
sent by a process without that hook has no readable age, and is reported as such.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import redis

from circuits.actions import QUEUES
from workers.recorder import LEDGER_STREAM
from workers.tagging import SENT_HEADER

#: kombu's Redis transport keeps one list per priority step of a queue (``name\x06\x16<p>`` for p > 0).
PRIORITY_STEPS = (0, 3, 6, 9)
INGEST_QUEUE = "events"


def queue_lists(queue: str) -> list[str]:
    return [f"{queue}\x06\x16{p}" if p else queue for p in PRIORITY_STEPS]


@dataclass
class QueueBacklog:
    name: str
    depth: int
    oldest_age_s: float | None = None  # None: empty, or no message said when it was sent
    age_unknown: bool = False  # messages wait whose age cannot be read


@dataclass
class Backlog:
    queues: list[QueueBacklog] = field(default_factory=list)
    ingest_lag_s: float = 0.0
    ledger_lag_s: float = 0.0
    ledger_entries: int = 0
    at: float = 0.0

    def queue(self, name: str) -> QueueBacklog:
        return next(q for q in self.queues if q.name == name)


def _sent_at(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        sent = json.loads(raw).get("headers", {}).get(SENT_HEADER)
        return float(sent) if sent is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def _stream_age(entries: list[tuple[bytes, dict[bytes, bytes]]], now: float) -> float:
    if not entries:
        return 0.0
    ms = int(entries[0][0].split(b"-")[0])
    return max(0.0, now - ms / 1000)


def read(r: redis.Redis, event_stream: str, queues: tuple[str, ...] = QUEUES) -> Backlog:
    """Everything at once, in one pipeline."""
    pipe = r.pipeline(transaction=False)
    for queue in queues:
        for key in queue_lists(queue):
            pipe.llen(key)
            pipe.lindex(key, -1)
    pipe.xrange(LEDGER_STREAM, "-", "+", count=1)
    pipe.xlen(LEDGER_STREAM)
    pipe.xrange(event_stream, "-", "+", count=1)
    replies = pipe.execute()
    now = time.time()
    out = Backlog(at=now)
    per_queue = 2 * len(PRIORITY_STEPS)
    for i, queue in enumerate(queues):
        chunk = replies[i * per_queue : (i + 1) * per_queue]
        depths, tails = chunk[0::2], chunk[1::2]
        sent = [_sent_at(t) for t in tails]
        known = [s for s in sent if s is not None]
        unknown = any(d and s is None for d, s in zip(depths, sent, strict=True))
        age = max(0.0, now - min(known)) if known else None
        out.queues.append(QueueBacklog(queue, int(sum(depths)), age, unknown))
    ledger_first, ledger_len, events_first = replies[len(queues) * per_queue :]
    out.ledger_lag_s = _stream_age(ledger_first, now)
    out.ledger_entries = int(ledger_len)
    stream_lag = _stream_age(events_first, now)
    ingest = next((q for q in out.queues if q.name == INGEST_QUEUE), None)
    out.ingest_lag_s = max(stream_lag, (ingest.oldest_age_s or 0.0) if ingest else 0.0)
    return out
