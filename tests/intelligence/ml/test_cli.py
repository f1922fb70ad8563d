"""`circuit-os ml ...` as a user runs it: real CSV files, a temp database, printed metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from circuits.settings import get_settings
from intelligence.ml.cli import ml
from intelligence.ml.examples import EXAMPLE_FILES


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CIRCUIT_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("CIRCUIT_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _leads_csv(tmp_path: Path, rows: int = 3000) -> Path:
    path = tmp_path / "leads.csv"
    pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).head(rows).to_csv(path, index=False)
    return path


def test_train_prints_held_out_metrics_and_progress(runner: CliRunner, tmp_path: Path) -> None:
    data = _leads_csv(tmp_path)
    result = runner.invoke(
        ml,
        [
            "train",
            "--data",
            str(data),
            "--label",
            "Converted",
            "--name",
            "lead_score",
            "--drop",
            "Tags",
            "--drop",
            "Lead Quality",
            "--drop",
            "Asymmetrique*",
            "--budget",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lead_score v1 [champion]" in result.stdout
    assert "ROC AUC 0." in result.stdout and "PR AUC" in result.stdout and "Brier" in result.stdout
    assert "held out:" in result.stdout
    assert "Tags (dropped on request)" in result.stdout
    assert "/ 2s budget" in result.stderr  # the progress line
    assert (tmp_path / "home" / "models" / "lead_score").is_dir()

    listed = runner.invoke(ml, ["models"])
    assert listed.exit_code == 0 and "lead_score" in listed.stdout and "champion" in listed.stdout

    evaluated = runner.invoke(ml, ["evaluate", "lead_score"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "ROC AUC 0." in evaluated.stdout


def test_promote_rollback_and_errors(runner: CliRunner, tmp_path: Path) -> None:
    data = _leads_csv(tmp_path, 1500)
    base = [
        "train",
        "--data",
        str(data),
        "--label",
        "Converted",
        "--name",
        "lead_score",
        "--drop",
        "Tags",
        "--engine",
        "baseline",
    ]
    assert runner.invoke(ml, base).exit_code == 0
    second = runner.invoke(ml, base)
    assert "lead_score v2 [challenger]" in second.stdout

    promoted = runner.invoke(ml, ["promote", "lead_score", "2"])
    assert promoted.exit_code == 0 and "v2 is now champion" in promoted.stdout
    rolled = runner.invoke(ml, ["rollback", "lead_score"])
    assert rolled.exit_code == 0 and "v2 retired, v1 is champion again" in rolled.stdout
    history = runner.invoke(ml, ["models", "lead_score", "--history"])
    assert "rollback" in history.stdout and "promoted" in history.stdout

    missing = runner.invoke(ml, ["evaluate", "nope"])
    assert missing.exit_code == 1 and "no champion" in missing.output and "Traceback" not in missing.output
    bad = runner.invoke(ml, ["train", "--data", str(data), "--label", "Nope", "--name", "x"])
    assert bad.exit_code == 1 and "label column 'Nope' is not in the data" in bad.output
