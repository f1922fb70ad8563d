"""Steps run in the task of the step before them (CIRCUIT_INLINE_STEPS_S), on a worker of their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT, applied_env, ended_run, new_id
from workers.embedded import CeleryProcess
from workers.publish import publish


@pytest.fixture(scope="module")
def inline_worker(engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryProcess]:
    """A worker that runs a step's next step in the same task for up to a second, on Redis database 8."""
    from workers.app import app

    env = {
        **engine_env,
        "CIRCUIT_INLINE_STEPS_S": "1",
        "CIRCUIT_REDIS_URL": engine_env["CIRCUIT_REDIS_URL"].rsplit("/", 1)[0] + "/8",
        "CIRCUIT_CIRCUITS": str(FIXTURES / "inline"),
    }
    log: Path = tmp_path_factory.mktemp("inline-worker") / "worker.log"
    args = ["worker", "-c", "2", "--loglevel", "INFO", "-n", f"inline-{uuid.uuid4().hex[:6]}@%h"]
    args += ["--without-mingle", "--without-gossip", "-E"]
    with applied_env(env), CeleryProcess(args, {**os.environ, **env}, log, cwd=ROOT) as proc:
        proc.wait_ready(app)
        yield proc


def _received(worker: CeleryProcess) -> int:
    """Step messages the worker has taken from the broker (Celery logs each one it receives)."""
    return sum(1 for line in worker.output().splitlines() if "circuit.action." in line and "received" in line)


def test_a_sequence_runs_in_one_task_and_a_retry_goes_out_as_the_steps_own_message(
    inline_worker: CeleryProcess, ledger: Any
) -> None:
    before = _received(inline_worker)
    event = publish("test.inline", {"n": 21}, id=new_id())
    run = ended_run(ledger, event.id, "t-inline")
    assert run["status"] == "succeeded", run["error"]
    steps = {s["step_id"]: s for s in run["steps"]}
    assert [steps[k]["status"] for k in ("first", "flaky", "after", "last")] == ["succeeded"] * 4
    assert steps["flaky"]["attempts"] == 3  # attempts counted as if each were its own task
    assert steps["after"]["output"] == {"attempt": 3, "doubled": 42}
    # four steps, three messages: the first step's (which ran the second), then the second step's two
    # retries (the last of which ran the third and fourth steps)
    assert _received(inline_worker) - before == 3


def test_a_step_with_other_time_limits_runs_as_a_task_of_its_own(inline_worker: CeleryProcess, ledger: Any) -> None:
    before = _received(inline_worker)
    event = publish("test.inline.limited", {"n": 1}, id=new_id())
    run = ended_run(ledger, event.id, "t-inline-limited", timeout=30)
    assert run["status"] == "failed" and "timed out after 0.5s" in run["error"]
    assert _received(inline_worker) - before >= 2
