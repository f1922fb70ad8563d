"""Prometheus metrics of an API process, for ``GET /metrics`` of ``circuit-os serve``.

The API counts what it sees itself (events it rejects at the door) and reports the gauges read
from Redis at scrape time (queue depth and age, ingest and ledger lag), like every worker host.
"""

from __future__ import annotations

from workers import metrics


def scrape() -> tuple[bytes, str]:
    """The exposition text and its content type; counting starts in this process at the first scrape."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if not metrics.enabled():
        metrics.enable()
    return generate_latest(metrics.registry()), CONTENT_TYPE_LATEST
