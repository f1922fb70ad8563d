"""Celery beat schedule, built from the circuits whose trigger is a ``schedule``.

A schedule is a five-field cron line (``"0 2 * * *"``) or a fixed interval (``"@every 30s"``,
``"@every 5m"``, ``"@every 1h"``). ``celery -A workers beat`` installs the entries when its
scheduler sets up (``workers/beat.py``). Each entry sends ``circuit.scheduled`` with the circuit's
name; beat stamps the message with the time it sent it, and the worker turns that into a
``circuit.scheduled`` event whose id is the circuit and the tick (:func:`tick_of`: the minute of a
cron line, the interval's slot of an ``@every``). So a tick starts one run, even if two beats sent it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedule

from circuits.catalog import Catalog
from circuits.errors import DefinitionError

_EVERY = re.compile(r"@every\s+([1-9]\d*)([smh])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


def cron(line: str) -> crontab:
    """A five-field cron line (minute hour day-of-month month day-of-week) as a Celery crontab."""
    minute, hour, day_of_month, month_of_year, day_of_week = line.split()
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except ValueError as exc:
        raise DefinitionError(f"bad cron schedule {line!r}: {exc}") from None


def interval_s(line: str) -> int | None:
    """The seconds of an ``@every`` line, or None for a cron line."""
    found = _EVERY.fullmatch(line.strip())
    if found:
        return int(found.group(1)) * _UNIT_S[found.group(2)]
    if line.strip().startswith("@"):
        raise DefinitionError(f"bad schedule {line!r}: write '@every 30s', '@every 5m' or '@every 1h'")
    return None


def every(line: str) -> schedule:
    """An ``@every`` line as a Celery interval schedule."""
    seconds = interval_s(line)
    if seconds is None:
        raise DefinitionError(f"{line!r} is not an @every interval")
    return schedule(run_every=timedelta(seconds=seconds))


def of(line: str) -> crontab | schedule:
    """A circuit's ``schedule`` as what Celery beat runs on."""
    return every(line) if interval_s(line) is not None else cron(line)


def tick_of(line: str, sent: datetime) -> datetime:
    """The tick a message sent at ``sent`` belongs to: its minute for a cron line, the start of
    its interval slot (counted from the epoch) for ``@every``. Two sends of one tick agree."""
    sent = sent.astimezone(UTC)
    seconds = interval_s(line)
    if seconds is None:
        return sent.replace(second=0, microsecond=0)
    slot = int(sent.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(slot, UTC)


def build(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """``beat_schedule`` entries for every scheduled circuit in ``catalog``."""
    return {
        f"circuit:{entry.name}": {
            "task": "circuit.scheduled",
            "schedule": of(entry.circuit.trigger.schedule or ""),
            "args": (entry.name,),
            "options": {"queue": "events", "expires": 3600},
        }
        for entry in catalog.scheduled()
    }
