"""The one-record fast path gives the same numbers as the general pandas path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from intelligence.ml.data import load_labelled
from intelligence.ml.examples import EXAMPLE_FILES
from intelligence.ml.scoring import Scorer
from intelligence.ml.spec import TrainSpec
from intelligence.ml.training import train


def _both(scorer: Scorer, records: list[dict]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    slow = scorer.pipeline.predict_proba(scorer.frame(records))[:, 1]
    fast = np.array([scorer.proba([r])[0] for r in records])
    return slow, fast


def test_fast_path_matches_on_real_and_odd_leads(leads_model) -> None:  # type: ignore[no-untyped-def]
    scorer = Scorer(leads_model.pipeline, leads_model.schema)
    assert scorer.encoder is not None
    records = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).head(300).to_dict("records")
    records += [
        {},  # nothing known
        {"Lead Origin": "Brand new origin", "TotalVisits": "lots", "Specialization": "Select"},
        {"Total Time Spent on Website": "1200", "Do Not Email": True, "Lead Source": 7, "Country": None},
        {"TotalVisits": float("nan"), "Page Views Per Visit": " 3.5 ", "City": "  Mumbai  "},
    ]
    slow, fast = _both(scorer, records)
    assert np.allclose(slow, fast, atol=1e-9)


def test_fast_path_matches_with_dates_and_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    n = 400
    words = ["pricing", "demo", "urgent", "budget", "later", "team", "trial", "contract"]
    frame = pd.DataFrame(
        {
            "ref": [f"R{i:04d}" for i in range(n)],
            "created": pd.date_range("2023-01-01", periods=n, freq="13h").strftime("%Y-%m-%d %H:%M"),
            "notes": [" ".join(rng.choice(words, 6)) for _ in range(n)],
            "size": rng.integers(1, 500, n).astype(float),
            "tier": rng.choice(["a", "b", "c", "rare"], n, p=[0.4, 0.3, 0.29, 0.01]),
        }
    )
    frame["won"] = ((frame["size"] > 200) ^ (rng.random(n) < 0.2)).map({True: "yes", False: "no"})
    path = tmp_path / "deals.csv"
    frame.to_csv(path, index=False)
    model = train(load_labelled(TrainSpec(source=str(path), label="won")), engine="baseline")
    roles = {c.name: c.role for c in model.schema.columns}
    assert roles == {"created": "date", "notes": "text", "size": "numeric", "tier": "categorical"}
    scorer = Scorer(model.pipeline, model.schema)
    assert scorer.encoder is not None
    records = frame.drop(columns="won").head(50).to_dict("records")
    records += [{"created": "not a date", "notes": None, "tier": "unseen"}, {"size": "NA"}]
    slow, fast = _both(scorer, records)
    assert np.allclose(slow, fast, atol=1e-9)
    proba, reasons = scorer.explain(records[:3])
    assert proba.shape == (3,) and all(len(r) <= 3 for r in reasons)
