"""The consumer-group loop under the ledger writer and the stream reader (workers.streams)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis as redis_lib

from workers.streams import Entry, StreamConsumer


class Flaky(StreamConsumer):
    """Fails its first batch, as a writer does while its database is away."""

    def __init__(self, r: redis_lib.Redis, stream: str) -> None:
        super().__init__(r, stream, "test", block_ms=10)
        self.failures = 1
        self.seen: list[tuple[list[bytes], bool]] = []

    def handle(self, entries: list[Entry], *, reclaimed: bool) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database away")
        self.seen.append(([e[1][b"n"] for e in entries], reclaimed))


def _reads(r: redis_lib.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0))


def test_a_failed_batch_is_read_again_first_and_a_healthy_loop_reads_once_per_batch(engine_env: Any) -> None:
    r = redis_lib.Redis.from_url(engine_env["CIRCUIT_REDIS_URL"])
    stream = f"test:stream:{uuid.uuid4().hex}"
    for n in range(3):
        r.xadd(stream, {"n": str(n)})
    consumer = Flaky(r, stream)
    consumer.ensure_group()
    with pytest.raises(RuntimeError):
        consumer.poll()
    assert r.xlen(stream) == 3  # nothing acknowledged

    r.xadd(stream, {"n": "3"})
    assert consumer.poll() == 3  # the pending batch first, as a retry
    assert consumer.seen == [([b"0", b"1", b"2"], True)]
    assert consumer.poll() == 1
    assert consumer.seen[-1] == ([b"3"], False)

    for n in (4, 5):  # in a healthy loop a batch costs one read
        r.xadd(stream, {"n": str(n)})
        before = _reads(r)
        assert consumer.poll() == 1
        assert _reads(r) - before == 1
    assert r.xlen(stream) == 0
