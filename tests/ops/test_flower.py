"""Flower by circuit: ``circuit-os flower`` starts Flower with a login, and its task list finds one run's
tasks by run id (every task message carries circuit, run and step in its kwargsrepr)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, wait_for
from tests.ops.harness import Stack
from workers.embedded import free_port

USER = "ops"
PASSWORD = f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def flower(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str, Any]]:
    tmp = tmp_path_factory.mktemp("ops-flower")
    with Stack(postgres_url, tmp) as stack:
        stack.worker()
        port = free_port()
        env = {**os.environ, **stack.env, "CIRCUIT_FLOWER_USER": USER, "CIRCUIT_FLOWER_PASSWORD": PASSWORD}
        log = (tmp / "flower.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "flower", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _get(url, "/api/workers", auth=True) is not None, 30, "Flower to see the worker")
            yield stack, url, tmp / "flower.log"
        finally:
            proc.terminate()
            proc.wait(15)
            log.close()


def _get(url: str, path: str, auth: bool) -> Any:
    request = urllib.request.Request(url + path)
    if auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            data = json.loads(reply.read() or b"null")
            return data or None
    except (urllib.error.URLError, ConnectionError):
        return None


def test_flowers_task_list_finds_a_run_by_its_id(flower: tuple[Stack, str, Any]) -> None:
    stack, url, log = flower
    run = stack.run_of(stack.publish("ops.branch", {"score": 95}, subject="lead-7"))
    assert run["status"] == "succeeded"
    query = urllib.parse.urlencode({"search": f"kwargs:run={run['id']}"})

    def listed() -> dict[str, Any] | None:
        tasks = _get(url, f"/api/tasks?{query}", auth=True) or {}
        # the `if` step (route) hands its task id to its replacement's last task (after): one entry for both
        return tasks if len(tasks) == len(run["steps"]) - 1 else None

    tasks = wait_for(listed, 20, "the run's tasks in Flower")
    labels = [eval(t["kwargs"], {}) for t in tasks.values()]  # noqa: S307 - Flower returns the kwargsrepr text
    assert {x["run"] for x in labels} == {run["id"]} and {x["circuit"] for x in labels} == {"ops-branch"}
    steps = {s["step_id"] for s in run["steps"]}
    assert {x["step"] for x in labels} | {"route", "after"} == steps
    by_step = {x["step"]: t for x, t in zip(labels, tasks.values(), strict=True)}
    assert by_step["notify"]["name"] == "circuit.join" and by_step["start"]["name"] == "circuit.action.core.set"
    assert by_step["n2"]["name"] == "circuit.action.core.log"
    assert all(t["args"] == f"(<context of run {run['id']}>,)" for t in tasks.values())  # no event data shown
    # nor in the results Flower shows (Celery's repr of the returned context stops at the run's ids)
    assert all("score" not in str(t.get("result")) and "lead-7" not in str(t.get("result")) for t in tasks.values())
    assert all(t["state"] == "SUCCESS" for t in tasks.values())


def test_flower_asks_for_the_login_and_never_prints_it(flower: tuple[Stack, str, Any]) -> None:
    _, url, log = flower
    request = urllib.request.Request(url + "/api/tasks")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert PASSWORD not in log.read_text(errors="replace")


def test_flower_without_a_login_is_refused_unless_asked() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_FLOWER")}
    out = subprocess.run(
        [sys.executable, "-m", "workers.cli", "flower"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "CIRCUIT_FLOWER_USER" in out.stderr and "--unauthenticated" in out.stderr
