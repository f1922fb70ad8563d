"""AI-native events from the ml actions: ml.score_crossed from ml.predict, ml.drift_detected from ml.drift.

Real Redis (the session server), a real registry on SQLite, a real model trained in seconds.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from circuits.actions import ActionContext
from circuits.errors import PermanentError
from intelligence.ml import actions
from intelligence.ml.contracts import DriftInput, PredictInput
from intelligence.ml.data import LabelledTable
from intelligence.ml.drift import psi
from intelligence.ml.examples import EXAMPLE_FILES
from intelligence.ml.live import crossings
from intelligence.ml.training import TrainedModel, train

SHIFTED = "Total Time Spent on Website"


@pytest.fixture(scope="module")
def model(leads_table: LabelledTable) -> TrainedModel:
    """The deterministic baseline engine: its scores spread over 0-100 on every run."""
    return train(leads_table, engine="baseline", budget_s=5)


def _leads(n: int, skip: int = 0) -> list[dict[str, Any]]:
    frame = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).sample(n, random_state=skip)
    return frame.to_dict("records")  # type: ignore[return-value]


def _step(ctx: ActionContext, step: str, run: str = "run-1") -> ActionContext:
    """Same process resources and event, another run and step (the idempotency token)."""
    return ActionContext(run_id=run, step_id=step, circuit="t", event=ctx.event, resources=ctx.resources)


def _champion(ctx: ActionContext, model: TrainedModel, spec: Any, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    reg = actions.registry(ctx)
    reg.register(name, model, spec)
    reg.promote(name, 1, "first")
    return name


def test_crossings_follow_the_score_up_and_down() -> None:
    assert crossings(None, 50, [80]) == []
    assert crossings(50, 85, [80]) == [(80, "up")]
    assert crossings(85, 90, [80]) == []
    assert crossings(90, 70, [80]) == [(80, "down")]
    assert crossings(None, 85, [80, 50, 90]) == [(50, "up"), (80, "up")]  # no previous: at or above counts
    assert crossings(95, 40, [50, 80, 90]) == [(90, "down"), (80, "down"), (50, "down")]  # in the order passed
    assert crossings(79.9, 80, [80]) == [(80, "up")] and crossings(80, 79.9, [80]) == [(80, "down")]


def test_score_crossing_a_level_emits_once_up_then_once_down(ctx, model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    name = _champion(ctx, model, leads_spec, "cross")
    pool = _leads(1500)
    scores = [p.score for p in actions.predict(ctx, PredictInput(model=name, records=pool, explain=False)).predictions]

    def near(target: float) -> dict[str, Any]:
        return pool[min(range(len(pool)), key=lambda i: abs(scores[i] - target))]

    path = [near(50), near(85), near(90), near(70)]  # the lead's story: 50 -> 85 -> 90 -> 70
    ctx.event = {"tenant": "acme", "subject": "lead-42"}
    outs, events = [], []
    for i, record in enumerate(path):
        step = _step(ctx, "score", run=f"run-{i}")
        outs.append(
            actions.predict(step, PredictInput(model=name, record=record, key="lead-42", levels=[80], explain=False))
        )
        events.append(step.emitted)
    got = [o.score for o in outs]
    assert got[0] < 80 <= got[1] and got[2] >= 80 > got[3], got  # the model put them where we asked

    assert [len(e) for e in events] == [0, 1, 0, 1]
    up, down = events[1][0], events[3][0]
    assert up["type"] == down["type"] == "ml.score_crossed"
    assert up["subject"] == "lead-42" and up["tenant"] == "acme"
    assert up["data"] == {
        "model": name,
        "key": "lead-42",
        "level": 80,
        "score": got[1],
        "previous": got[0],
        "direction": "up",
    }
    assert down["data"]["direction"] == "down" and down["data"]["previous"] == got[2]
    assert outs[0].previous_score is None and outs[0].crossed == []
    assert [c.model_dump() for c in outs[1].crossed] == [{"level": 80.0, "direction": "up"}]
    assert outs[2].previous_score == got[1] and outs[2].crossed == []

    # A retried step sees the same previous score, finds the same crossing, emits the same event id.
    again = _step(ctx, "score", run="run-3")
    out = actions.predict(again, PredictInput(model=name, record=path[3], key="lead-42", levels=[80], explain=False))
    assert out.previous_score == got[2] and again.emitted[0]["id"] == down["id"]

    # Another tenant's lead of the same name has its own history.
    ctx.event = {"tenant": "other"}
    first = _step(ctx, "score", run="run-x")
    actions.predict(first, PredictInput(model=name, record=path[1], key="lead-42", levels=[80], explain=False))
    assert [e["data"]["previous"] for e in first.emitted] == [None]


def test_levels_need_a_key_and_one_record() -> None:
    with pytest.raises(ValidationError, match="together"):
        PredictInput(record={}, levels=[80])
    with pytest.raises(ValidationError, match="one record"):
        PredictInput(records=[{}], key="k", levels=[80])
    with pytest.raises(ValidationError, match="0-100"):
        PredictInput(record={}, key="k", levels=[0.8, 120])


def test_training_keeps_a_profile_of_its_inputs(model) -> None:  # type: ignore[no-untyped-def]
    profile = model.schema.profile
    assert profile is not None
    minutes = profile[SHIFTED]
    assert minutes.kind == "numeric" and 3 <= len(minutes.edges) <= 9
    assert len(minutes.expected) == len(minutes.edges) + 2 and sum(minutes.expected) == pytest.approx(1, abs=1e-4)
    assert profile["Lead Source"].kind == "categorical" and "Google" in profile["Lead Source"].categories
    assert psi(minutes.expected, minutes.expected) == 0


def test_drifted_input_emits_drift_detected_naming_it(ctx, model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    steady = _champion(ctx, model, leads_spec, "steady")
    shifted = _champion(ctx, model, leads_spec, "shifted")
    live = _leads(800, skip=1)
    moved = [{**r, SHIFTED: int(r[SHIFTED]) + 3000} for r in live]  # a web site change: visits now last longer
    actions.predict(_step(ctx, "a"), PredictInput(model=steady, records=live, explain=False))
    actions.predict(_step(ctx, "b"), PredictInput(model=shifted, records=moved, explain=False))
    actions.predict(_step(ctx, "b"), PredictInput(model=shifted, records=moved, explain=False))  # a retry adds nothing

    calm = _step(ctx, "drift-a")
    out = actions.drift(calm, DriftInput(model=steady, limit=0.2, min_rows=200))
    assert out.checked and out.rows == 800 and out.version == 1
    assert out.drifted == [] and calm.emitted == []
    assert SHIFTED in out.scores and max(out.scores.values()) < 0.2, out.scores

    alarmed = _step(ctx, "drift-b")
    out = actions.drift(alarmed, DriftInput(model=shifted, limit=0.2, min_rows=200))
    assert out.rows == 800 and out.drifted == [SHIFTED] and out.scores[SHIFTED] > 1
    [event] = alarmed.emitted
    assert event["type"] == "ml.drift_detected" and event["subject"] == shifted
    assert event["data"] == {
        "model": shifted,
        "version": 1,
        "features": {SHIFTED: out.scores[SHIFTED]},
        "limit": 0.2,
        "rows": 800,
    }


def test_drift_without_enough_rows_or_a_profile_says_why(ctx, model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    name = _champion(ctx, model, leads_spec, "few")
    actions.predict(_step(ctx, "a"), PredictInput(model=name, records=_leads(20), explain=False))
    out = actions.drift(ctx, DriftInput(model=name, min_rows=200))
    assert not out.checked and out.rows == 20 and "fewer than min_rows=200" in out.reason

    old = dataclasses.replace(model, schema=model.schema.model_copy(update={"profile": None}))
    legacy = _champion(ctx, old, leads_spec, "legacy")
    with pytest.raises(PermanentError, match="trained before training profiles were kept: retrain it"):
        actions.drift(ctx, DriftInput(model=legacy))
    skipped = actions.drift(ctx, DriftInput(model=legacy, missing="skip"))
    assert not skipped.checked and skipped.version == 1 and "before training profiles" in skipped.reason

    none = actions.drift(ctx, DriftInput(model="no_such_model", missing="skip"))
    assert not none.checked and "no champion" in none.reason and ctx.emitted == []
