"""Scheduled circuits: beat's schedule comes from cron triggers; a tick starts one run."""

from __future__ import annotations

import time
from typing import Any

import beat_schedule
from circuits.actions import ActionRegistry
from circuits.catalog import Catalog
from tests.conftest import ACTION_MODULES, CIRCUITS, wait_for


def test_cron_triggers_become_beat_entries() -> None:
    catalog = Catalog.load(CIRCUITS, ActionRegistry.from_modules(ACTION_MODULES))
    schedule = beat_schedule.build(catalog)
    assert list(schedule) == ["circuit:t-scheduled"]
    entry = schedule["circuit:t-scheduled"]
    assert entry["task"] == "circuit.scheduled" and entry["args"] == ("t-scheduled",)
    tab = entry["schedule"]
    assert tab.minute == {30} and tab.hour == {2} and tab.day_of_week == {1, 2, 3, 4, 5}


def test_a_tick_starts_one_run_per_minute(ledger: Any, worker: Any) -> None:
    from storage.ledger import get_run, list_runs
    from workers.app import app

    app.send_task("circuit.scheduled", args=["t-scheduled"])
    app.send_task("circuit.scheduled", args=["t-scheduled"])

    def runs() -> list[dict[str, Any]]:
        return [r for r in list_runs(ledger, circuit="t-scheduled", limit=10) if r["status"] == "succeeded"]

    found = wait_for(runs, 20, "the scheduled run")
    run = get_run(ledger, found[0]["id"])
    assert run["steps"][0]["output"] == {"circuit": "t-scheduled", "type": "circuit.scheduled"}
    # the second tick has been handled, and started nothing
    wait_for(
        lambda: f"event {run['event_id']} (circuit.scheduled) already seen" in worker.output(), 20, "the second tick"
    )
    time.sleep(0.5)  # the ledger writer flushes well within this
    assert len(runs()) == 1


def test_celery_beat_loads_the_schedule_of_the_circuits(engine_env: dict[str, str], tmp_path: Any) -> None:
    import os

    from tests.conftest import ROOT
    from workers.embedded import CeleryProcess

    args = ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule"), "--pidfile", ""]
    with CeleryProcess(args, {**os.environ, **engine_env}, tmp_path / "beat.log", cwd=ROOT) as beat:
        wait_for(lambda: "scheduled circuit(s): circuit:t-scheduled" in beat.output(), 30, "beat to start")
