"""`circuit-os demo` on a fresh home: embedded Redis, SQLite, a worker, local Slack and SMTP receivers,
the lead-processing and hot-lead-alert circuits."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_lead_circuits_end_to_end_and_prints_what_was_sent(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}
    env["CIRCUIT_HOME"] = str(tmp_path / "home")
    out = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--events", "40", "--train-budget", "10"],
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
    for step in ("score", "route", "done", "lead", "email"):
        assert any(line.startswith(step) for line in out.stdout.splitlines()), step
    assert "imported 40 leads into the CRM" in out.stdout

    # every score that crossed 80 started an alert, which posted to #sales and emailed the lead's owner
    alerts = re.search(
        r"hot lead alerts: (\d+) scores crossed 80 \(ml.score_crossed\), (\d+) runs: succeeded (\d+)", out.stdout
    )
    assert alerts, out.stdout
    hot = int(alerts[1])
    assert hot > 0 and alerts[1] == alerts[2] == alerts[3]
    assert f"Slack messages: {2 * hot} (#leads {hot}, #sales {hot})" in out.stdout
    assert f"emails: {hot}" in out.stdout
    examples = out.stdout.split("sent to the local receivers (nothing left this machine):")[1].splitlines()
    assert examples[2].startswith("    #leads: Hot lead ") and examples[2].endswith(": routed to sales")
    assert examples[3].startswith("    #sales: Hot lead ") and "@example.com: score " in examples[3]
    assert examples[5].startswith("    to ") and ": Hot lead " in examples[5]
    assert examples[6].startswith("    to ") or hot == 1

    # and the CRM says so: the hot leads are marked hot, the rest nurture, all with their scores
    with sqlite3.connect(tmp_path / "home" / "circuit_os.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM crm_leads WHERE score IS NOT NULL GROUP BY status"))
    assert statuses == {"hot": hot, "nurture": 40 - hot}
