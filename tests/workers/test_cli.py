"""The `circuit-os` commands a user types: publish, runs list/show, events rejected, circuits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, new_id, wait_for


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
    )


def test_publish_then_runs_list_and_show(engine_env: dict[str, str], worker: Any, tmp_path: Path) -> None:
    data = tmp_path / "lead.json"
    data.write_text(json.dumps({"n": 21}))
    event_id = new_id("cli")
    out = cli(engine_env, "publish", "test.sequence", "--data", f"@{data}", "--id", event_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == event_id

    def listed() -> list[dict[str, Any]]:
        res = cli(engine_env, "runs", "list", "--event", event_id, "--json")
        runs = json.loads(res.stdout)
        return runs if runs and runs[0]["status"] == "succeeded" else []

    [run] = wait_for(listed, 30, "the run in `runs list`")
    assert run["circuit"] == "t-sequence"
    table = cli(engine_env, "runs", "list", "--circuit", "t-sequence", "--limit", "50").stdout
    assert run["id"] in table and "STATUS" in table.splitlines()[0]
    show = cli(engine_env, "runs", "show", run["id"])
    assert show.returncode == 0
    lines = show.stdout.splitlines()
    assert "status succeeded" in lines[1]
    step_lines = [line for line in lines if line.startswith(("first", "second", "third"))]
    assert len(step_lines) == 3 and all("succeeded" in line for line in step_lines)
    assert '{"plus_one": 43}' in show.stdout


def test_publish_inline_json_and_bad_input(engine_env: dict[str, str], worker: Any) -> None:
    ok = cli(engine_env, "publish", "test.sequence", "--data", '{"n": 1}')
    assert ok.returncode == 0, ok.stderr
    bad_json = cli(engine_env, "publish", "test.sequence", "--data", "{n: 1}")
    assert bad_json.returncode == 1 and "data: --data is not JSON" in bad_json.stderr
    bad_type = cli(engine_env, "publish", "nodots", "--data", "{}")
    assert bad_type.returncode == 1 and "type:" in bad_type.stderr
    rejected = wait_for(
        lambda: "nodots" in cli(engine_env, "events", "rejected", "--limit", "50").stdout, 15, "the CLI's dead letter"
    )
    assert rejected


def test_unknown_run_and_circuit_listing(engine_env: dict[str, str]) -> None:
    missing = cli(engine_env, "runs", "show", "no-such-run")
    assert missing.returncode == 1 and "no run 'no-such-run'" in missing.stderr
    listing = cli(engine_env, "circuits", "list")
    assert "t-sequence" in listing.stdout and "cron 30 2 * * 1-5" in listing.stdout
    canvas = cli(engine_env, "circuits", "show", "t-parallel")
    assert canvas.stdout.startswith("chain") and "circuit.join [inner]" in canvas.stdout


def test_bad_configuration_names_the_variable(engine_env: dict[str, str]) -> None:
    out = cli({**engine_env, "CIRCUIT_REDIS_URL": "http://nope"}, "runs", "list")
    assert out.returncode == 1
    assert "CIRCUIT_REDIS_URL" in out.stderr and "redis://" in out.stderr
