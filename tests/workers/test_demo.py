"""`circuit-os demo` on a fresh home: embedded Redis, SQLite, a worker, the lead-processing circuit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_lead_circuit_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}
    env["CIRCUIT_HOME"] = str(tmp_path / "home")
    out = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--events", "40", "--train-budget", "5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "started embedded Redis" in out.stdout
    assert "events: 40   runs started: 40" in out.stdout
    assert "runs by status: succeeded 40" in out.stdout
    assert "demo OK" in out.stdout
    assert (tmp_path / "home" / "circuit_os.db").exists()
    assert "lead_score v1 champion" in out.stdout and "held-out ROC AUC" in out.stdout
    for step in ("score", "route", "done"):
        assert any(line.startswith(step) for line in out.stdout.splitlines()), step
