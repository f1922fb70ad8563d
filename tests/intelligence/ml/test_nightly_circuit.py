"""The shipped nightly retraining circuit loads and names only real ml actions."""

from __future__ import annotations

from circuits.actions import ActionRegistry
from circuits.loader import load_file
from circuits.settings import EXAMPLES_DIR
from circuits.validate import validate


def test_nightly_retrain_circuit_is_valid() -> None:
    circuit, source = load_file(EXAMPLES_DIR / "circuits" / "nightly_retrain.yaml")
    assert circuit.trigger.schedule == "0 2 * * *"
    assert [s.action for s in circuit.steps] == ["ml.retrain", "ml.retrain"]  # type: ignore[union-attr]
    assert {s.with_["name"] for s in circuit.steps} == {"lead_score", "churn"}  # type: ignore[union-attr]
    assert validate(circuit, ActionRegistry.from_modules(["intelligence.ml.actions"]), source) == []
