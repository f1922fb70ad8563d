"""Beat schedulers that carry the circuits' schedules, and the tick stamp on what beat sends.

``celeryconfig.beat_scheduler`` names one of them (``CIRCUIT_BEAT_SCHEDULER``):

* :class:`RedBeatScheduler` (``redbeat``, the default): celery-redbeat keeps the schedule and the
  time of each entry's last run in Redis, and only the beat holding its lock sends anything. A
  second beat waits for the lock, and takes over when the first stops (at once) or dies (once
  the lock times out, ``CIRCUIT_BEAT_LOCK_TIMEOUT_S``), from where the first left off.
* :class:`FileScheduler` (``file``): Celery's own, schedule in a local file; one beat only.

Both put the circuits' entries (``beat_schedule.build``) into ``beat_schedule`` before the
scheduler reads it: Celery builds the scheduler before ``beat_init`` fires, and redbeat drops
entries from Redis that are missing at set-up, with their last run time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler
from redbeat import RedBeatScheduler as _RedBeat

log = logging.getLogger(__name__)

#: The message header in which beat says when it sent a tick (seconds since the epoch).
TICK_HEADER = "circuit_tick"


def install(app: Celery) -> dict[str, dict[str, Any]]:
    """Add the scheduled circuits to ``app.conf.beat_schedule``; return their entries."""
    import beat_schedule
    from workers.runtime import runtime

    entries = beat_schedule.build(runtime().catalog)
    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **entries}
    log.info("beat: %d scheduled circuit(s): %s", len(entries), ", ".join(entries) or "none")
    return entries


class _Circuits:
    app: Celery
    installed: dict[str, dict[str, Any]] | None = None

    def setup_schedule(self) -> None:
        self.installed = install(self.app)
        super().setup_schedule()  # type: ignore[misc]


class RedBeatScheduler(_Circuits, _RedBeat):  # type: ignore[misc]
    """celery-redbeat, with the circuits' schedules."""


class FileScheduler(_Circuits, PersistentScheduler):  # type: ignore[misc]
    """Celery's file-backed scheduler, with the circuits' schedules (run a single beat)."""


def stamp_tick(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish`` in beat: say when a ``circuit.scheduled`` tick was sent, so the worker
    names the tick by when beat sent it, not by when a busy queue handed it over."""
    from workers.tasks import SCHEDULED_TASK

    if sender == SCHEDULED_TASK and headers is not None:
        headers.setdefault(TICK_HEADER, time.time())
