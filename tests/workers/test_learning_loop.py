"""The retraining circuit through a real worker: a better challenger is promoted, a worse one refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intelligence.ml.examples import LEAK_COLUMNS_LEADS
from tests.conftest import new_id
from tests.intelligence.ml.columns import WEAK as WEAK_INPUTS
from workers.publish import publish

LEAKS = list(LEAK_COLUMNS_LEADS)
WEAK = LEAKS + WEAK_INPUTS


def retrain(run_of: Any, name: str, drop: list[str]) -> dict[str, Any]:
    event = publish("test.retrain", {"name": name, "drop": drop}, id=new_id("retrain"))
    run = run_of(event.id, "t-retrain", timeout=180)
    assert run["status"] == "succeeded", run["error"]
    return run["steps"][0]["output"]


def test_retraining_circuit_promotes_better_and_refuses_worse(run_of: Any, ledger: Any, engine_env: Any) -> None:
    from intelligence.ml.registry import ModelRegistry

    name = f"loop_{new_id('m')[-8:]}"
    first = retrain(run_of, name, WEAK)
    assert first["promoted"] and first["champion_version"] == 1

    better = retrain(run_of, name, LEAKS)
    assert better["promoted"], better["reason"]
    assert better["champion_version"] == 2
    assert better["challenger_metrics"]["roc_auc"] > better["champion_metrics"]["roc_auc"] + 0.005

    worse = retrain(run_of, name, WEAK)
    assert not worse["promoted"]
    assert worse["champion_version"] == 2 and worse["challenger_version"] == 3
    assert "champion kept" in worse["reason"]

    registry = ModelRegistry(ledger, Path(engine_env["CIRCUIT_HOME"]) / "models")
    assert {v.version: v.status for v in registry.versions(name)} == {1: "retired", 2: "champion", 3: "retired"}
    assert registry.decisions(name)[0]["kind"] == "refused"
