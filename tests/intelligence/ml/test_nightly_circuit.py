"""The shipped nightly retraining circuit loads, checks drift before retraining and names only real actions."""

from __future__ import annotations

from circuits.actions import ActionRegistry
from circuits.loader import load_file
from circuits.settings import EXAMPLES_DIR
from circuits.validate import validate


def test_nightly_retrain_circuit_is_valid() -> None:
    circuit, source = load_file(EXAMPLES_DIR / "circuits" / "nightly_retrain.yaml")
    assert circuit.trigger.schedule == "0 2 * * *"
    steps = circuit.steps
    assert [s.action for s in steps] == ["ml.drift", "ml.drift", "ml.retrain", "ml.retrain", "core.log"]  # type: ignore[union-attr]
    assert [s.with_["model"] for s in steps[:2]] == ["lead_score", "churn"]  # type: ignore[union-attr]
    assert all(s.with_["missing"] == "skip" for s in steps[:2])  # type: ignore[union-attr]
    assert {s.with_["name"] for s in steps[2:4]} == {"lead_score", "churn"}  # type: ignore[union-attr]
    registry = ActionRegistry.from_modules(["intelligence.ml.actions", "circuits.builtin"])
    assert validate(circuit, registry, source) == []
