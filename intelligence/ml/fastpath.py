"""Encode one record straight to the model's input vector, without building a DataFrame.

A one-row DataFrame through ``prepare_frame`` and a ColumnTransformer costs ~10 ms, all of
it pandas and dispatch. This module reads the fitted parameters of the preprocessor that
``features.build_preprocessor`` makes (imputer medians, missing indicators, scaler, one-hot
categories) and applies them to a dict in plain Python: well under a millisecond. It
returns None for any preprocessor it does not recognise, and callers then take the slow,
general path. A test checks both paths give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from intelligence.ml.features import MISSING_CATEGORY, _to_str
from intelligence.ml.spec import FeatureSchema

# An encoder writes one raw value into its slots of the output vector.
Encoder = Callable[[Any, np.ndarray], None]


def _is_missing(value: Any, missing: set[str]) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in missing


def _number(value: Any, missing: set[str]) -> float:
    if _is_missing(value, missing):
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return math.nan


def _numeric_encoders(
    names: list[str], pipe: Any, offset: int, missing: set[str], roles: Mapping[str, str]
) -> dict[str, Encoder] | None:
    imputer, scaler = pipe.named_steps.get("impute"), pipe.named_steps.get("scale")
    if imputer is None or scaler is None or imputer.strategy != "median":
        return None
    stats = imputer.statistics_
    valid = [i for i in range(len(names)) if not math.isnan(stats[i])]
    flagged = list(imputer.indicator_.features_) if imputer.indicator_ is not None else []
    mean, scale = scaler.mean_, scaler.scale_
    encoders: dict[str, Encoder] = {}
    for i, name in enumerate(names):
        slot = offset + valid.index(i) if i in valid else None
        flag = offset + len(valid) + flagged.index(i) if i in flagged else None
        is_date = roles[name] == "date"
        encoders[name] = _numeric_encoder(slot, flag, float(stats[i]), mean, scale, offset, missing, is_date)
    return encoders


def _numeric_encoder(
    slot: int | None,
    flag: int | None,
    median: float,
    mean: np.ndarray,
    scale: np.ndarray,
    offset: int,
    missing: set[str],
    is_date: bool,
) -> Encoder:
    def encode(value: Any, out: np.ndarray) -> None:
        x = _days(value, missing) if is_date else _number(value, missing)
        absent = math.isnan(x)
        if slot is not None:
            k = slot - offset
            out[slot] = ((median if absent else x) - mean[k]) / scale[k]
        if flag is not None:
            k = flag - offset
            out[flag] = ((1.0 if absent else 0.0) - mean[k]) / scale[k]

    return encode


def _days(value: Any, missing: set[str]) -> float:
    import pandas as pd

    if _is_missing(value, missing):
        return math.nan
    stamp = pd.to_datetime(_to_str(value), errors="coerce", utc=True, format="mixed")
    if stamp is pd.NaT or stamp is None:
        return math.nan
    return float((stamp - pd.Timestamp("1970-01-01", tz="UTC")).total_seconds() / 86400.0)


def _categorical_encoders(names: list[str], pipe: Any, offset: int, missing: set[str]) -> dict[str, Encoder] | None:
    onehot = pipe.named_steps.get("onehot")
    if onehot is None or getattr(onehot, "drop", None) is not None:
        return None
    encoders: dict[str, Encoder] = {}
    infrequent = getattr(onehot, "infrequent_categories_", [None] * len(names))
    for i, name in enumerate(names):
        rare = set(infrequent[i]) if infrequent[i] is not None else set()
        frequent = [c for c in onehot.categories_[i] if c not in rare]
        slots = {c: offset + j for j, c in enumerate(frequent)}
        other = offset + len(frequent) if rare else None
        offset += len(frequent) + (1 if rare else 0)
        encoders[name] = _category_encoder(slots, other, missing)
    return encoders


def _category_encoder(slots: dict[str, int], other: int | None, missing: set[str]) -> Encoder:
    def encode(value: Any, out: np.ndarray) -> None:
        key = MISSING_CATEGORY if _is_missing(value, missing) else _to_str(value)
        slot = slots.get(key, other)
        if slot is not None:
            out[slot] = 1.0

    return encode


def _text_encoder(vectorizer: Any, offset: int, missing: set[str]) -> Encoder:
    width = len(vectorizer.vocabulary_)

    def encode(value: Any, out: np.ndarray) -> None:
        text = "" if _is_missing(value, missing) else str(value).strip()
        out[offset : offset + width] = vectorizer.transform([text]).toarray()[0]

    return encode


class RowEncoder:
    """Record dict -> model input row, using the fitted preprocessor's parameters."""

    def __init__(self, encoders: dict[str, Encoder], width: int) -> None:
        self.encoders = encoders
        self.width = width

    def encode(self, record: dict[str, Any]) -> np.ndarray:
        out = np.zeros(self.width)
        for name, encoder in self.encoders.items():
            encoder(record.get(name), out)
        return out

    @classmethod
    def compile(cls, preprocessor: Any, schema: FeatureSchema) -> RowEncoder | None:
        """An encoder for ``preprocessor`` (as built by ``build_preprocessor``), or None if unrecognised."""
        missing = set(schema.missing_values)
        roles = {c.name: c.role for c in schema.columns}
        encoders: dict[str, Encoder] = {}
        offset = 0
        try:
            for name, fitted, columns in preprocessor.transformers_:
                if name == "remainder":
                    continue
                width = len(fitted.get_feature_names_out())
                if name == "num":
                    part = _numeric_encoders(list(columns), fitted, offset, missing, roles)
                elif name == "cat":
                    part = _categorical_encoders(list(columns), fitted, offset, missing)
                elif name.startswith("text") and isinstance(columns, str):
                    part = {columns: _text_encoder(fitted, offset, missing)}
                else:
                    part = None
                if part is None:
                    return None
                encoders.update(part)
                offset += width
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        return cls(encoders, offset)
