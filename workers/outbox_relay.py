"""Record events into ingest: the publisher the ``data.*`` actions hand events to, and the sweep.

:mod:`integrations.records` must not import the workers, so it declares a hook
(:func:`integrations.records.outbox.set_publisher`). :func:`install` fills it at worker
start with :func:`publish`, which accepts each event in the process that made the write
(as ``CIRCUIT_PUBLISH_MODE=direct`` does: no extra hop, and ingest dedupes by event id).
Forked pool processes inherit the hook. :func:`sweep` runs from the watchdog loop and
publishes outbox rows a crash left unsent.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from integrations.records import outbox
from workers.ingest import accept_isolated
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)


def publish(envelope: dict[str, Any]) -> None:
    """Accept one record event here; a malformed one becomes a dead letter, a Redis outage raises."""
    accept_isolated(runtime(), envelope, origin="records")


def install() -> None:
    """Make the ``data.*`` actions publish their events right after their commit."""
    outbox.set_publisher(publish)


def sweep(rt: Runtime) -> int:
    """Publish record events left unsent; a database that is down only skips the round."""
    try:
        return outbox.sweep(
            rt.engine,
            publish,
            older_than_s=rt.settings.records_outbox_sweep_after_s,
            keep_s=float(rt.settings.dedupe_ttl_s),
        )
    except SQLAlchemyError as exc:
        log.warning("outbox sweep skipped: %s", type(exc).__name__)
        return 0
