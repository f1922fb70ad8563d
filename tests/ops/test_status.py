"""``circuit-os status`` on a live system: queues with depth and oldest age, workers with their queues
and load, runs per second from the ledger, the ledger lag; as a table and as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ROOT
from tests.ops.harness import Stack


@pytest.fixture(scope="module")
def live(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(postgres_url, tmp_path_factory.mktemp("ops-status")) as stack:
        stack.worker("-Q", "events,core", name="ops-status-a@%h")  # nobody reads `notify`
        yield stack


def status(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "status", "--timeout", "1", *args],
        cwd=ROOT,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_of_a_live_system(live: Stack) -> None:
    runs = [live.run_of(live.publish("ops.sequence", {"n": i})) for i in range(5)]
    assert all(r["status"] == "succeeded" for r in runs)
    live.app.send_task("circuit.action.core.noop", args=[{}], queue="notify")  # waits: no worker reads notify
    raw = json.dumps({"body": "", "headers": {"task": "x"}, "properties": {"delivery_tag": "1"}})
    redis.Redis.from_url(live.redis.url).lpush("data", raw)  # a message from a sender without the sent-time header
    time.sleep(0.3)

    out = status(live, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    queues = {q["name"]: q for q in doc["queues"]}
    assert queues["notify"]["depth"] == 1 and queues["notify"]["oldest_age_s"] >= 0.3
    assert queues["data"]["depth"] == 1 and queues["data"]["oldest_age_s"] is None and queues["data"]["age_unknown"]
    assert queues["core"]["depth"] == 0
    [worker] = doc["workers"]
    assert worker["name"].startswith("ops-status-a@") and worker["queues"] == ["core", "events"]
    assert worker["concurrency"] == 2 and worker["active"] == 0 and worker["load"] == 0
    assert worker["processed"] >= 5  # a run's quick steps on one queue share a task (workers/inline.py)
    assert doc["runs_started_per_s"] == pytest.approx(5 / 60, abs=1e-3) == doc["runs_ended_per_s"]
    assert 0 <= doc["ledger_lag_s"] < 10 and doc["ledger_backlog"] >= 0

    table = status(live)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["QUEUE", "DEPTH", "OLDEST"]
    assert any(line.startswith("data") and "unknown (no sent time)" in line for line in lines)
    assert any(line.startswith("ops-status-a@") and "core,events" in line for line in lines)
    assert any(line.startswith("runs/s (last 60s): 0.08 started") for line in lines)
    assert any(line.startswith("ledger lag: ") for line in lines)


def test_status_says_when_no_worker_answers(live: Stack) -> None:
    for proc in live.workers:
        proc.stop()
    out = status(live)
    assert out.returncode == 0, out.stderr
    assert "no worker answered" in out.stdout
