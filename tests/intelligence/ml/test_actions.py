"""The ml.* actions called as a worker would: typed inputs, a real registry, per-process cache."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from pydantic import ValidationError

from circuits.actions import ActionContext, ActionRegistry
from circuits.errors import NotFoundError
from intelligence.ml import actions
from intelligence.ml.contracts import (
    ChurnInput,
    EvaluateInput,
    OutcomeInput,
    PredictInput,
    PromoteInput,
    RetrainInput,
    RollbackInput,
    TrainInput,
)
from intelligence.ml.examples import EXAMPLE_FILES
from intelligence.ml.promotion import train_and_register

NAMES = {
    "ml.predict",
    "ml.churn_risk",
    "ml.train",
    "ml.evaluate",
    "ml.retrain",
    "ml.record_outcome",
    "ml.promote",
    "ml.rollback",
    "ml.drift",
}


def _leads(n: int = 5) -> list[dict]:  # type: ignore[type-arg]
    return pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).head(n).to_dict("records")


def _step(ctx: ActionContext, step: str) -> ActionContext:
    """Same process resources, another step (its own idempotency key)."""
    return ActionContext(run_id=ctx.run_id, step_id=step, circuit=ctx.circuit, resources=ctx.resources)


def test_actions_are_registered_on_the_ml_queue() -> None:
    registry = ActionRegistry.from_modules(["intelligence.ml.actions"])
    assert {s.name for s in registry} == NAMES
    assert all(s.queue == "ml" for s in registry)


def test_importing_the_actions_is_light() -> None:
    code = (
        "import sys, intelligence.ml.actions; "
        "heavy = [m for m in ('sklearn', 'pandas', 'flaml', 'celery', 'workers', 'lightgbm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_predict_scores_one_lead_and_a_batch_with_reasons(ctx, leads_model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    reg = actions.registry(ctx)
    reg.register("lead_score", leads_model, leads_spec)
    reg.promote("lead_score", 1, "first")
    leads = _leads(50)

    one = actions.predict(ctx, PredictInput(record=leads[2]))
    assert one.model_version == 1 and one.count == 1
    assert one.score is not None and 0 <= one.score <= 100
    assert 1 <= len(one.reasons) <= 3 and all("pts)" in r for r in one.reasons)
    assert not any(r.startswith(("Tags", "Lead Quality", "Asymmetrique")) for r in one.reasons)

    batch = actions.predict(ctx, PredictInput(records=leads, explain=False))
    assert batch.count == 50 and batch.score is None
    assert [p.id for p in batch.predictions] == [r["Prospect ID"] for r in leads]
    assert batch.predictions[2].score == pytest.approx(one.score, abs=0.05)
    converted = [p.score for p, r in zip(batch.predictions, leads, strict=False) if r["Converted"] == 1]
    lost = [p.score for p, r in zip(batch.predictions, leads, strict=False) if r["Converted"] == 0]
    assert sum(converted) / len(converted) > sum(lost) / len(lost)

    with pytest.raises(ValidationError):
        PredictInput()
    with pytest.raises(NotFoundError, match="no champion"):
        actions.predict(ctx, PredictInput(model="nope", record={}))


def test_champion_cache_reloads_only_when_the_champion_changes(ctx, leads_model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    reg = actions.registry(ctx)
    reg.register("lead_score", leads_model, leads_spec)
    reg.register("lead_score", leads_model, leads_spec)
    reg.promote("lead_score", 1, "first")
    lead = _leads(1)[0]
    for _ in range(3):
        assert actions.predict(ctx, PredictInput(record=lead)).model_version == 1
    cache = actions.models(ctx)
    assert cache.loads == 1

    out = actions.promote(_step(ctx, "p"), PromoteInput(name="lead_score", version=2))
    assert (out.champion_version, out.previous_version) == (2, 1)
    assert actions.predict(ctx, PredictInput(record=lead)).model_version == 2
    assert cache.loads == 2
    back = actions.rollback(_step(ctx, "r"), RollbackInput(name="lead_score"))
    assert back.champion_version == 1
    assert actions.predict(ctx, PredictInput(record=lead)).model_version == 1


def test_train_churn_then_risk_and_evaluate(ctx) -> None:  # type: ignore[no-untyped-def]
    out = actions.train(ctx, TrainInput(name="churn", budget_s=2, sample=3000))
    assert out.version == 1 and out.status == "champion"
    assert out.metrics["roc_auc"] > 0.75 and "customerID" in out.ignored
    again = actions.train(ctx, TrainInput(name="churn", budget_s=2, sample=3000))
    assert again.version == 1  # same run and step: the retried task does not train twice

    customers = pd.read_csv(EXAMPLE_FILES["churn"]).head(20).to_dict("records")
    risk = actions.churn_risk(ctx, ChurnInput(record=customers[0]))
    assert risk.risk is not None and 0 <= risk.risk <= 100 and risk.band in ("low", "medium", "high")
    many = actions.churn_risk(ctx, ChurnInput(records=customers))
    assert many.count == 20 and many.customers[0].id == customers[0]["customerID"]

    ev = actions.evaluate(ctx, EvaluateInput(name="churn"))
    assert ev.version == 1 and ev.metrics["roc_auc"] == pytest.approx(out.metrics["roc_auc"], abs=1e-9)


def test_outcomes_become_training_rows(ctx) -> None:  # type: ignore[no-untyped-def]
    spec_drop = ["Tags", "Lead Quality", "Asymmetrique*"]
    leads = _leads(30)
    first = actions.record_outcome(ctx, OutcomeInput(record=leads[0], outcome="converted"))
    assert first.new and first.label == 1 and first.record_id == "test:test-run:test-step"
    assert not actions.record_outcome(ctx, OutcomeInput(record=leads[0], outcome="converted")).new
    for i, lead in enumerate(leads[1:]):
        new = {**lead, "Prospect ID": f"new-{i}"}
        out = actions.record_outcome(
            ctx, OutcomeInput(record=new, outcome="lost" if i % 2 else "won", record_id=new["Prospect ID"])
        )
        assert out.new

    reg = actions.registry(ctx)
    from intelligence.ml.examples import EXAMPLES

    spec = EXAMPLES["leads"].model_copy(update={"sample": None, "drop": spec_drop})
    small = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).head(600)
    path = ctx.settings.home / "leads600.csv"
    small.to_csv(path, index=False)
    spec = spec.model_copy(update={"source": str(path)})
    info, trained = train_and_register(reg, "lead_score", spec, engine="baseline")
    assert info.n_rows == 600 + 30  # the source rows plus every recorded outcome

    result = actions.retrain(_step(ctx, "nightly"), RetrainInput(name="lead_score", engine="baseline", margin=0.0))
    assert result.challenger_version == 2 and result.reason
    replay = actions.retrain(_step(ctx, "nightly"), RetrainInput(name="lead_score", engine="baseline", margin=0.0))
    assert replay.challenger_version == 2 and replay.reason == result.reason


def test_first_call_in_a_fresh_worker_can_be_a_prediction(settings, leads_model, leads_spec, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from intelligence.ml.registry import ModelRegistry

    setup = ModelRegistry(engine, tmp_path / "models")
    setup.register("lead_score", leads_model, leads_spec)
    setup.promote("lead_score", 1, "first")
    fresh = ActionContext.for_test(settings=settings)  # nothing built yet in this "process"
    try:
        assert actions.predict(fresh, PredictInput(record=_leads(1)[0])).model_version == 1
    finally:
        fresh.resources.close()
