"""Input drift: how far live inputs have moved from the training rows, per feature, as PSI.

At training time :func:`profile` keeps each input's training distribution in the feature
schema (quantile bin edges for numbers and dates, the frequent values for categories), so
drift is measured against the exact rows the model learnt from, even after its data source
has changed. :func:`measure` bins live rows the same way and scores each input with the
population stability index: PSI = sum((live - train) * ln(live / train)) over the bins.
Rules of thumb: under 0.1 stable, 0.1-0.2 moving, over 0.2 drifted. Missing values are a bin
of their own, so an input that stops arriving counts as drift too. Text inputs are not scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from intelligence.ml.features import prepare_frame
from intelligence.ml.spec import FeatureProfile, FeatureSchema

#: Numeric inputs are cut at these training quantiles (deciles); repeated edges collapse.
QUANTILES = tuple(q / 10 for q in range(1, 10))
#: Categorical inputs keep at most this many frequent values; the rest pool as "other".
MAX_CATEGORIES = 20
#: Shares are floored here so an empty bin gives a large but finite PSI.
EPSILON = 1e-4


@dataclass(frozen=True)
class DriftReport:
    """PSI per scored input, and which inputs passed the limit (worst first)."""

    scores: dict[str, float]
    drifted: list[str]
    rows: int


def _numeric_profile(values: pd.Series) -> FeatureProfile:
    present = values.dropna().to_numpy(dtype=float)
    edges = sorted({float(e) for e in np.quantile(present, QUANTILES)}) if len(present) else []
    return FeatureProfile(kind="numeric", edges=edges, expected=_numeric_shares(values, edges), rows=len(values))


def _numeric_shares(values: pd.Series, edges: list[float]) -> list[float]:
    array = values.to_numpy(dtype=float)
    missing = np.isnan(array)
    bins = np.searchsorted(np.asarray(edges, dtype=float), array[~missing], side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1).tolist() + [int(missing.sum())]
    return _shares(counts)


def _categorical_profile(values: pd.Series) -> FeatureProfile:
    frequent = values.dropna().astype(str).value_counts().head(MAX_CATEGORIES)
    categories = [str(c) for c in frequent.index]
    return FeatureProfile(
        kind="categorical",
        categories=categories,
        expected=_categorical_shares(values, categories),
        rows=len(values),
    )


def _categorical_shares(values: pd.Series, categories: list[str]) -> list[float]:
    missing = values.isna()
    text = values[~missing].astype(str)
    counts = text.value_counts()
    known = [int(counts.get(c, 0)) for c in categories]
    return _shares([*known, len(text) - sum(known), int(missing.sum())])


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [round(c / total, 6) if total else 0.0 for c in counts]


def profile(schema: FeatureSchema, prepared: pd.DataFrame) -> FeatureSchema:
    """A copy of ``schema`` with the training distribution of each input (``prepared``: training rows)."""
    profiles: dict[str, FeatureProfile] = {}
    for col in schema.columns:
        if col.role in ("numeric", "date"):
            profiles[col.name] = _numeric_profile(prepared[col.name])
        elif col.role == "categorical":
            profiles[col.name] = _categorical_profile(prepared[col.name])
    return schema.model_copy(update={"profile": profiles})


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index between two lists of bin shares."""
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def measure(schema: FeatureSchema, rows: list[dict[str, object]], limit: float) -> DriftReport:
    """PSI of each profiled input between the training rows and live ``rows`` (raw records).

    Raises:
        ValueError: ``schema`` has no training profile.
    """
    if schema.profile is None:
        raise ValueError("the feature schema has no training profile")
    live = prepare_frame(pd.DataFrame.from_records(rows, columns=schema.feature_names), schema)
    scores: dict[str, float] = {}
    for name, prof in schema.profile.items():
        if name not in live.columns:
            continue
        values = live[name]
        shares = (
            _numeric_shares(values, prof.edges)
            if prof.kind == "numeric"
            else _categorical_shares(values, prof.categories)
        )
        scores[name] = round(psi(prof.expected, shares), 4)
    drifted = sorted((n for n, s in scores.items() if s >= limit), key=lambda n: -scores[n])
    return DriftReport(scores=scores, drifted=drifted, rows=len(rows))
