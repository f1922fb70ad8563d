"""The learning loop's rule: a challenger replaces the champion only if it wins on held-out rows."""

from __future__ import annotations

from intelligence.ml.promotion import retrain, train_and_register
from intelligence.ml.registry import ModelRegistry
from tests.intelligence.ml.columns import WEAK


def _weak(spec):  # type: ignore[no-untyped-def]
    return spec.model_copy(update={"drop": spec.drop + WEAK})


def test_better_challenger_is_promoted(registry: ModelRegistry, leads_spec) -> None:  # type: ignore[no-untyped-def]
    champion, _ = train_and_register(registry, "lead_score", _weak(leads_spec), engine="baseline")
    assert champion.status == "champion" and champion.version == 1

    result = retrain(registry, "lead_score", margin=0.005, spec=leads_spec, engine="flaml", budget_s=2)

    assert result.promoted, result.reason
    assert result.champion.version == 2 == result.challenger.version
    assert result.challenger_metrics.roc_auc > result.champion_metrics.roc_auc + 0.005  # type: ignore[union-attr]
    assert result.challenger_metrics.n_test == result.champion_metrics.n_test  # type: ignore[union-attr]
    assert {v.version: v.status for v in registry.versions("lead_score")} == {1: "retired", 2: "champion"}
    assert registry.decisions("lead_score")[0]["kind"] == "promoted"


def test_worse_challenger_is_refused_and_the_reason_recorded(  # type: ignore[no-untyped-def]
    registry: ModelRegistry, leads_model, leads_spec
) -> None:
    registry.register("lead_score", leads_model, leads_spec)
    registry.promote("lead_score", 1, "trained with AutoML")

    result = retrain(registry, "lead_score", margin=0.005, spec=_weak(leads_spec), engine="baseline")

    assert not result.promoted
    assert result.champion.version == 1 and registry.get("lead_score").version == 1
    refused = registry.get("lead_score", 2)
    assert refused.status == "retired"
    assert refused.note is not None and refused.note.startswith("refused: champion kept")
    decision = registry.decisions("lead_score")[0]
    assert decision["kind"] == "refused" and decision["version"] == 2 and decision["champion_version"] == 1
    assert "ROC AUC" in decision["reason"] and "margin 0.0050" in decision["reason"]
    assert decision["details"]["champion"]["roc_auc"] > decision["details"]["challenger"]["roc_auc"]


def test_a_tie_within_the_margin_keeps_the_champion(registry: ModelRegistry, leads_model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    registry.register("lead_score", leads_model, leads_spec)
    registry.promote("lead_score", 1, "first")
    result = retrain(registry, "lead_score", margin=0.5, spec=leads_spec, engine="baseline")
    assert not result.promoted and "champion kept" in result.reason
    assert registry.get("lead_score").version == 1
