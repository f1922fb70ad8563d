"""Governor limits (issue 8) on a worker of their own: low limits, its own Redis database and circuits."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT, applied_env, ended_run, new_id, wait_for
from workers.embedded import CeleryProcess
from workers.publish import publish

LIMITS = {
    "CIRCUIT_GOVERNOR_MAX_STEPS": "3",
    "CIRCUIT_GOVERNOR_MAX_DURATION_S": "2",
    "CIRCUIT_GOVERNOR_MAX_LLM_TOKENS": "100",
    "CIRCUIT_GOVERNOR_MAX_CONCURRENT_RUNS": "1",
    "CIRCUIT_WATCHDOG_INTERVAL_S": "0.3",
}


@pytest.fixture(scope="module")
def gov_worker(engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryProcess]:
    """A worker with low governor limits on Redis database 9 (the session worker keeps database 0)."""
    from workers.app import app

    env = {
        **engine_env,
        **LIMITS,
        "CIRCUIT_REDIS_URL": engine_env["CIRCUIT_REDIS_URL"].rsplit("/", 1)[0] + "/9",
        "CIRCUIT_CIRCUITS": str(FIXTURES / "governors"),
    }
    log: Path = tmp_path_factory.mktemp("gov-worker") / "worker.log"
    args = ["worker", "-c", "2", "--loglevel", "INFO", "-n", f"gov-{uuid.uuid4().hex[:6]}@%h"]
    args += ["--without-mingle", "--without-gossip"]
    with applied_env(env), CeleryProcess(args, {**os.environ, **env}, log, cwd=ROOT) as proc:
        proc.wait_ready(app)
        yield proc


@pytest.fixture()
def ended(gov_worker: CeleryProcess, ledger: Any) -> Any:
    def get(event_id: str, circuit: str, timeout: float = 20.0) -> dict[str, Any]:
        return ended_run(ledger, event_id, circuit, timeout)

    return get


def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"  # the tenant limit of 1 must not serialise the other tests


def steps_by_id(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step_id"]: s for s in run["steps"]}


def test_a_run_over_max_steps_fails_with_the_setting_named(ended: Any) -> None:
    event = publish("test.gov.steps", {}, id=new_id(), tenant=tenant())
    run = ended(event.id, "t-gov-steps")
    assert run["status"] == "failed"
    assert "run exceeded CIRCUIT_GOVERNOR_MAX_STEPS=3" in run["error"]
    steps = steps_by_id(run)
    assert [steps[k]["status"] for k in ("s1", "s2", "s3", "s4")] == ["succeeded"] * 3 + ["failed"]
    assert "s5" not in steps


def test_a_run_over_max_llm_tokens_fails_at_its_next_step(ended: Any) -> None:
    event = publish("test.gov.tokens", {}, id=new_id(), tenant=tenant())
    run = ended(event.id, "t-gov-tokens")
    assert run["status"] == "failed"
    assert "run exceeded CIRCUIT_GOVERNOR_MAX_LLM_TOKENS=100 (120 tokens used)" in run["error"]
    steps = steps_by_id(run)
    assert steps["ask"]["status"] == "succeeded" and steps["after"]["status"] == "failed"


def test_a_run_over_max_duration_is_failed_by_the_watchdog_and_its_next_step(ended: Any) -> None:
    event = publish("test.gov.slow", {}, id=new_id(), tenant=tenant())
    run = ended(event.id, "t-gov-slow")
    assert run["status"] == "failed"
    assert "run exceeded CIRCUIT_GOVERNOR_MAX_DURATION_S=2" in run["error"]
    # the watchdog ended it while its 4 s step was still sleeping
    assert (run["ended_at"] - run["started_at"]).total_seconds() < 3.8

    def after_failed() -> bool:
        from storage.ledger import get_run

        step = steps_by_id(get_run(_engine(), run["id"])).get("after")
        return bool(step) and step["status"] == "failed" and "CIRCUIT_GOVERNOR_MAX_DURATION_S=2" in step["error"]

    wait_for(after_failed, 10, "the step after the deadline to fail")


def _engine() -> Any:
    from workers.runtime import runtime

    return runtime().engine


def test_runs_of_one_tenant_over_max_concurrent_runs_wait_their_turn(ended: Any) -> None:
    who = tenant()
    events = [publish("test.gov.tenant", {"order": i}, id=new_id(), tenant=who) for i in range(2)]
    runs = [ended(e.id, c) for e in events for c in ("t-gov-tenant", "t-gov-tenant-other")]
    assert [r["status"] for r in runs] == ["succeeded"] * 4
    spans = sorted((r["started_at"], r["ended_at"]) for r in (steps_by_id(r)["nap"] for r in runs))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, "two runs of one tenant ran at once over CIRCUIT_GOVERNOR_MAX_CONCURRENT_RUNS=1"
    other = publish("test.gov.tenant", {"order": 9}, id=new_id(), tenant=tenant())
    assert ended(other.id, "t-gov-tenant")["status"] == "succeeded"
