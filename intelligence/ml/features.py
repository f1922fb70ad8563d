"""Turn raw records into model inputs: cleaning by role, then a scikit-learn preprocessor.

Cleaning (:func:`prepare_frame`) is a plain function driven by the stored feature schema,
so a saved model holds only standard scikit-learn transformers and loads with skops
without trusting any of our own classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from intelligence.ml.spec import FeatureSchema, jsonable

MISSING_CATEGORY = "(missing)"
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _as_text(series: pd.Series, missing: set[str]) -> pd.Series:
    """Strings, stripped, with "not answered" tokens turned into NaN (object dtype for sklearn)."""
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        text = series.str.strip()
    elif pd.api.types.infer_dtype(series, skipna=True) == "string":  # records from JSON: all str
        text = series.astype("str").str.strip()
    else:
        text = series.map(_to_str, na_action="ignore")
    text = text.astype(object)
    return text.where(text.notna() & ~text.isin(missing), np.nan)


def _to_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def days_to_iso(days: float) -> str:
    """A day count since 1970 back to an ISO timestamp (date references are stored readable)."""
    return str((_EPOCH + pd.Timedelta(days=days)).isoformat())


def _as_days(series: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    return (stamps - _EPOCH).dt.total_seconds() / 86400.0


def prepare_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """The schema's columns of ``frame``, typed by role; absent columns come back as missing."""
    missing = set(schema.missing_values)
    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        if col.name in frame.columns:
            series = frame[col.name]
        else:
            series = pd.Series(np.nan, index=frame.index, dtype=object)
        if col.role == "numeric":
            if not pd.api.types.is_numeric_dtype(series):
                series = pd.to_numeric(_as_text(series, missing), errors="coerce")
            out[col.name] = series.astype(float)
        elif col.role == "date":
            out[col.name] = _as_days(_as_text(series, missing))
        elif col.role == "text":
            out[col.name] = _as_text(series, missing).fillna("").astype(object)
        else:
            out[col.name] = _as_text(series, missing)
    return pd.DataFrame(out, index=frame.index)


def build_preprocessor(schema: FeatureSchema, *, min_frequency: int = 5) -> ColumnTransformer:
    """Impute and scale numbers, one-hot categories (rare and unseen ones pooled), TF-IDF text."""
    numeric = schema.of_role("numeric") + schema.of_role("date")
    categorical = schema.of_role("categorical")
    parts: list[tuple[str, Any, Any]] = []
    if numeric:
        parts.append(
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
                ),
                numeric,
            )
        )
    if categorical:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist", min_frequency=min_frequency, sparse_output=False
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    for i, name in enumerate(schema.of_role("text")):
        parts.append((f"text{i}", TfidfVectorizer(max_features=100, min_df=2, dtype=np.float64), name))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def with_references(schema: FeatureSchema, prepared_train: pd.DataFrame) -> FeatureSchema:
    """A copy of ``schema`` with each column's typical training value, the baseline of explanations."""
    columns = []
    for col in schema.columns:
        values = prepared_train[col.name].dropna()
        if col.role == "numeric":
            ref: Any = jsonable(values.median()) if len(values) else None
        elif col.role == "date":
            ref = days_to_iso(float(values.median())) if len(values) else None
        elif col.role == "text":
            ref = ""
        else:
            ref = str(values.mode().iloc[0]) if len(values) else None
        columns.append(col.model_copy(update={"reference": ref}))
    return schema.model_copy(update={"columns": columns})
