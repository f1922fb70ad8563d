"""The chaos suite's fast subset, on services of its own: a Redis with an append-only file
(restarted here, so not the session's), PostgreSQL, two worker processes and an ingest.

The scenarios are the ones ``python -m bench.chaos`` runs, on small batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import idempotency, pool_kill, redis_restart
from bench.chaos_lab import Lab, Result

DEADLINE_S = 25.0  # after the fault; the lab sets the watchdog to resume a stalled run within ~12 s

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(workers=2, concurrency=2, loglevel="INFO", logs=tmp_path_factory.mktemp("chaos")) as lab:
        yield lab


def _nothing_lost_stuck_or_doubled(res: Result, logs: Path) -> None:
    where = f"{res}; logs in {logs}"
    assert res.published > 0, where
    assert (res.lost, res.stuck, res.duplicated, res.missing) == (0, 0, 0, 0), where
    assert res.succeeded == res.published, where
    assert res.recover_s is not None, where


def test_kill9_of_pool_children_mid_run_loses_nothing_and_repeats_only_a_step_killed_after_its_effect(
    lab: Lab,
) -> None:
    """A kill that lands after a step's effect and before its done mark runs the step again: the one
    repeat the engine allows (README, "Delivery guarantees"). A pool process runs one step at a time,
    so two kills explain two repeats at most; any other repeat counts as a duplicate and fails."""
    lab.heal()
    res = pool_kill(lab, runs=50, kills=2, every_s=0.5, deadline_s=DEADLINE_S)
    assert res.fault.endswith("x2")
    _nothing_lost_stuck_or_doubled(res, lab.logs)
    assert res.repeated_after_kill <= 2, res


def test_redis_kill9_and_restart_during_runs_strands_nothing(lab: Lab) -> None:
    lab.heal()
    res = redis_restart(lab, runs=50, hard=True, spread_s=2.0, deadline_s=DEADLINE_S)
    _nothing_lost_stuck_or_doubled(res, lab.logs)


def test_one_idempotency_key_published_200_times_from_4_processes_starts_one_run(lab: Lab) -> None:
    lab.heal()
    res = idempotency(lab, publishes=200, processes=4, deadline_s=DEADLINE_S)
    _nothing_lost_stuck_or_doubled(res, lab.logs)
    assert res.succeeded == 1 and not any("extra run" in n for n in res.notes), res
