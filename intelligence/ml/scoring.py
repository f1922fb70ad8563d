"""Score records with a loaded model and say why: probabilities, 0-100 scores, top reasons.

Reasons come from occlusion: each input is set back to its typical training value and the
change in score is that input's contribution. All variants of a batch are scored in one
call, so explaining costs one larger prediction rather than one per column. Small
requests take the dict-to-vector fast path (``fastpath.RowEncoder``); large batches go
through pandas, which wins once there are many rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from intelligence.ml.fastpath import RowEncoder
from intelligence.ml.features import prepare_frame
from intelligence.ml.spec import FeatureSchema

#: Up to this many records, encoding record by record beats building a DataFrame.
FAST_PATH_MAX = 32


@dataclass(frozen=True)
class Reason:
    """One input's push on the score, in points (out of 100)."""

    column: str
    value: Any
    points: float

    def text(self) -> str:
        return f"{self.column} = {_show(self.value)} ({self.points:+.0f} pts)"


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return "(missing)"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


class Scorer:
    """A fitted pipeline with the schema it reads."""

    def __init__(self, pipeline: Any, schema: FeatureSchema, version: int = 0, name: str = "") -> None:
        self.pipeline = pipeline
        self.schema = schema
        self.version = version
        self.name = name
        self._columns = schema.feature_names
        steps = getattr(pipeline, "steps", None)
        self._model = steps[-1][1] if steps else None
        self.encoder = RowEncoder.compile(steps[0][1], schema) if steps and len(steps) == 2 else None

    def frame(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Raw records to a prepared frame (unknown keys ignored, absent ones missing)."""
        raw = pd.DataFrame.from_records(records, columns=self._columns)
        return prepare_frame(raw, self.schema)

    def proba(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Positive-class probability of each record."""
        if self.encoder is not None and self._model is not None and len(records) <= FAST_PATH_MAX:
            matrix = np.vstack([self.encoder.encode(r) for r in records])
            return np.asarray(self._model.predict_proba(matrix)[:, 1], dtype=float)
        return np.asarray(self.pipeline.predict_proba(self.frame(records))[:, 1], dtype=float)

    def explain(self, records: list[dict[str, Any]], top_k: int = 3) -> tuple[np.ndarray, list[list[Reason]]]:
        """Probabilities and, per record, the ``top_k`` inputs that moved its score most."""
        cols = self.schema.columns
        variants = list(records)
        for col in cols:
            variants.extend({**r, col.name: col.reference} for r in records)
        n = len(records)
        proba = self.proba(variants).reshape(len(cols) + 1, n)
        base, effects = proba[0], (proba[0] - proba[1:]) * 100.0  # effects: columns x records
        reasons: list[list[Reason]] = []
        for i, record in enumerate(records):
            order = np.argsort(-np.abs(effects[:, i]))[:top_k]
            reasons.append(
                [
                    Reason(cols[j].name, self._shown(record.get(cols[j].name)), round(float(effects[j, i]), 1))
                    for j in order
                    if abs(effects[j, i]) >= 0.5
                ]
            )
        return base, reasons

    def _shown(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in self.schema.missing_values:
            return None
        return value


def to_score(probability: float) -> float:
    """A probability as a 0-100 score, one decimal."""
    return round(float(probability) * 100.0, 1)
