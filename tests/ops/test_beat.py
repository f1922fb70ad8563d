"""Beat that fires once: two real ``celery -A workers beat`` processes share one schedule through
celery-redbeat's lock; one run per tick, and when the beat holding the lock is killed the other
takes over within a tick."""

from __future__ import annotations

import os
import re
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import beat_schedule
from circuits.errors import DefinitionError
from circuits.model import Trigger
from tests.conftest import ROOT, wait_for
from workers.beat import TICK_HEADER
from workers.embedded import CeleryProcess, EmbeddedRedis

EVERY_S = 5
LOCK_TIMEOUT_S = 3  # with a 1 s loop, a dead beat's lock lapses and the standby has it within 4 s < a tick


def test_every_is_an_interval_schedule() -> None:
    assert Trigger(schedule="@every 5s").schedule == "@every 5s"
    for bad in ("@every 0s", "@every 5x", "@every", "@daily"):
        with pytest.raises(ValueError, match="is not an interval|is not a cron line"):
            Trigger(schedule=bad)
    assert beat_schedule.every("@every 2m").run_every.total_seconds() == 120
    assert beat_schedule.of("*/5 * * * *").minute == {0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55}
    with pytest.raises(DefinitionError):
        beat_schedule.of("@hourly")


def test_a_tick_is_named_by_when_beat_sent_it() -> None:
    sent = datetime(2026, 5, 1, 2, 30, 59, 900000, tzinfo=UTC)
    assert beat_schedule.tick_of("30 2 * * *", sent) == datetime(2026, 5, 1, 2, 30, tzinfo=UTC)
    assert beat_schedule.tick_of("@every 5s", sent) == datetime(2026, 5, 1, 2, 30, 55, tzinfo=UTC)
    # two sends of one tick agree; ticks an interval apart never do
    assert beat_schedule.tick_of("@every 5s", sent.replace(second=56)) == beat_schedule.tick_of("@every 5s", sent)
    assert beat_schedule.tick_of("@every 5s", sent.replace(second=55, microsecond=0)) != beat_schedule.tick_of(
        "@every 5s", sent.replace(second=50, microsecond=0)
    )


def _sent(beat: CeleryProcess, entry: str) -> int:
    return beat.output().count(f"Sending due task {entry} ")


def test_two_beats_fire_once_per_tick_and_one_takes_over(ledger: Any, postgres_url: str, tmp_path: Path) -> None:
    from storage.ledger import list_runs

    name = f"t-beat-{uuid.uuid4().hex[:8]}"
    entry = f"circuit:{name}"
    circuits = tmp_path / "circuits"
    circuits.mkdir()
    (circuits / "every.yaml").write_text(
        f'name: {name}\ntrigger: {{schedule: "@every {EVERY_S}s"}}\n'
        "steps:\n  - {id: tick, action: core.set, with: {at: '{{ event.time }}'}}\n"
    )
    with EmbeddedRedis() as redis_url:  # a Redis of its own: the session worker never sees these ticks
        env = {
            **os.environ,
            "CIRCUIT_REDIS_URL": redis_url,
            "CIRCUIT_DATABASE_URL": postgres_url,
            "CIRCUIT_CIRCUITS": str(circuits),
            "CIRCUIT_ACTION_MODULES": "circuits.builtin",
            "CIRCUIT_HOME": str(tmp_path / "home"),
            "CIRCUIT_BEAT_SCHEDULER": "redbeat",
            "CIRCUIT_BEAT_LOCK_TIMEOUT_S": str(LOCK_TIMEOUT_S),
            "CIRCUIT_BEAT_MAX_INTERVAL_S": "1",
        }
        worker_args = ["worker", "-Q", "events,core", "-c", "2", "--loglevel", "INFO", "-n", f"{name}@%h"]
        beat_args = ["beat", "--loglevel", "INFO", "--pidfile", ""]
        with (
            CeleryProcess(worker_args, env, tmp_path / "worker.log", cwd=ROOT) as worker,
            CeleryProcess(beat_args, env, tmp_path / "beat-a.log", cwd=ROOT) as beat_a,
            CeleryProcess(beat_args, env, tmp_path / "beat-b.log", cwd=ROOT) as beat_b,
        ):
            wait_for(lambda: " ready." in worker.output(), 60, "the worker")
            beats = [beat_a, beat_b]
            for beat in beats:
                wait_for(lambda b=beat: f"scheduled circuit(s): {entry}" in b.output(), 60, "beat to load the schedule")

            def holder() -> CeleryProcess | None:
                owners = [b for b in beats if "beat: Acquired lock" in b.output()]
                assert len(owners) <= 1, "two beats hold the lock"
                return owners[0] if owners else None

            first = wait_for(holder, 60, "a beat to take the lock")
            standby = beat_b if first is beat_a else beat_a
            wait_for(lambda: _sent(first, entry) >= 3, 4 * EVERY_S + 10, "three ticks")
            assert _sent(standby, entry) == 0, "the standby beat sent a tick while the other held the lock"
            sent = _sent(first, entry)
            wait_for(lambda: _sent(first, entry) > sent, EVERY_S + 5, "the next tick")
            # beat logs "Sending due task" before it publishes: a kill in between loses that tick, which this
            # test would count as sent (seen once under a full test run); kill once the tick's run exists
            ticks = _sent(first, entry)
            wait_for(lambda: len(list_runs(ledger, circuit=name, limit=100)) >= ticks, 20, "the tick's run")
            assert first.proc is not None
            first.proc.send_signal(signal.SIGKILL)  # right after a tick: the next one is the standby's
            first.proc.wait(10)
            killed_at = datetime.now(UTC)
            wait_for(lambda: "beat: Acquired lock" in standby.output(), LOCK_TIMEOUT_S + EVERY_S, "the takeover")
            wait_for(lambda: _sent(standby, entry) >= 3, 4 * EVERY_S + 10, "three ticks from the standby")
            standby.stop()
            sends = _sent(first, entry) + _sent(standby, entry)
            # a tick that waited in a busy queue is named by when beat sent it (the stamp), not when it ran
            late = Celery(broker=redis_url, set_as_current=False)
            stamp = datetime(2031, 1, 6, 2, 30, 7, tzinfo=UTC).timestamp()
            late.send_task("circuit.scheduled", args=[name], queue="events", headers={TICK_HEADER: stamp})
            stamped = f"schedule:{name}:2031-01-06T02:30:05+00:00"

            def runs() -> list[dict[str, Any]]:
                got = [r for r in list_runs(ledger, circuit=name, limit=100) if r["status"] == "succeeded"]
                return got if len(got) >= sends + 1 else []

            done = wait_for(runs, 30, f"{sends} runs")
            assert "already seen" not in worker.output(), "a tick was sent twice (the engine's dedupe caught it)"

    assert stamped in {r["event_id"] for r in done}
    done = [r for r in done if r["event_id"] != stamped]
    assert len(done) == sends  # one run per tick sent, no more
    ticks = sorted(datetime.fromisoformat(re.sub(r"^schedule:[^:]+:", "", r["event_id"])) for r in done)
    assert len(set(ticks)) == len(ticks)
    gaps = [(b - a).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(g >= EVERY_S for g in gaps), gaps  # never two runs in one tick
    # the standby took over within one tick: no tick was skipped around the kill
    assert all(g <= 2 * EVERY_S for g in gaps), (gaps, killed_at)
