"""Celery beat schedule, built from the circuits whose trigger is a cron ``schedule``.

``celery -A workers beat`` installs it at start-up (see ``workers/signals.py``). Each
entry sends ``circuit.scheduled`` with the circuit's name; the worker turns that into
a ``circuit.scheduled`` event whose id is the circuit and the minute, so two beat
processes started by mistake still start one run per tick.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from circuits.catalog import Catalog
from circuits.errors import DefinitionError


def cron(line: str) -> crontab:
    """A five-field cron line (minute hour day-of-month month day-of-week) as a Celery crontab."""
    minute, hour, day_of_month, month_of_year, day_of_week = line.split()
    try:
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except ValueError as exc:
        raise DefinitionError(f"bad cron schedule {line!r}: {exc}") from None


def build(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """``beat_schedule`` entries for every scheduled circuit in ``catalog``."""
    return {
        f"circuit:{entry.name}": {
            "task": "circuit.scheduled",
            "schedule": cron(entry.circuit.trigger.schedule or ""),
            "args": (entry.name,),
            "options": {"queue": "events", "expires": 3600},
        }
        for entry in catalog.scheduled()
    }
