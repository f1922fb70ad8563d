"""AI-native events through a real worker: a score crossing in one circuit starts another circuit."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from intelligence.ml.examples import EXAMPLE_FILES, EXAMPLES
from tests.conftest import new_id
from workers.publish import publish


def _watch(run_of: Any, model: str, lead: str, record: dict[str, Any]) -> dict[str, Any]:
    event = publish("test.score_watch", {"model": model, "record": record}, subject=lead, id=new_id("watch"))
    run = run_of(event.id, "t-score-watch", timeout=60)
    assert run["status"] == "succeeded", run["error"]
    return run


def test_a_score_crossing_80_starts_the_circuit_watching_ml_score_crossed(
    run_of: Any, ledger: Any, engine_env: dict[str, str]
) -> None:
    from intelligence.ml.promotion import train_and_register
    from intelligence.ml.registry import ModelRegistry
    from intelligence.ml.scoring import Scorer
    from storage.ledger import list_runs

    name = f"watch_{uuid.uuid4().hex[:8]}"
    registry = ModelRegistry(ledger, Path(engine_env["CIRCUIT_HOME"]) / "models")
    spec = EXAMPLES["leads"].model_copy(update={"sample": 2000})
    _, trained = train_and_register(registry, name, spec, engine="baseline", budget_s=5)
    leads = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).sample(300, random_state=7).to_dict("records")
    scores = Scorer(trained.pipeline, trained.schema).proba(leads) * 100
    cold = leads[int(scores.argmin())]
    hot = leads[int(scores.argmax())]
    lead = f"lead-{uuid.uuid4().hex[:8]}"

    first = _watch(run_of, name, lead, cold)
    assert first["steps"][0]["output"]["crossed"] == []
    quiet = f"emit:{first['id']}:{first['steps'][0]['step_id']}:0"
    assert list_runs(ledger, event_id=quiet) == []

    second = _watch(run_of, name, lead, hot)
    out = second["steps"][0]["output"]
    assert out["crossed"] == [{"level": 80.0, "direction": "up"}] and out["previous_score"] < 80 <= out["score"]

    emitted = f"emit:{second['id']}:{second['steps'][0]['step_id']}:0"
    fired = run_of(emitted, "t-score-crossed", timeout=60)
    assert fired["status"] == "succeeded", fired["error"]
    assert fired["steps"][0]["output"] == {"lead": lead, "score": out["score"], "previous": out["previous_score"]}
