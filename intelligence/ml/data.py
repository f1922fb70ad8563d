"""Load a labelled table (CSV, shipped example or database table) and split it reproducibly.

The held-out split is decided by a hash of each row's id (or, without one, of its raw
content), not by a random draw: a row stays on the same side across retrainings, so a
champion and a challenger trained months apart are both judged on rows neither saw.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from circuits.errors import ConfigError, NotFoundError
from intelligence.ml.examples import example_path
from intelligence.ml.roles import infer_schema
from intelligence.ml.spec import FeatureSchema, TrainSpec

log = logging.getLogger(__name__)

_YES = {"1", "yes", "true", "y", "t", "converted", "won", "churned", "positive"}


@dataclass
class LabelledTable:
    """Raw features, 0/1 labels, which rows are held out, and what the data was."""

    frame: pd.DataFrame
    y: np.ndarray
    test_mask: np.ndarray
    schema: FeatureSchema
    fingerprint: str

    @property
    def train(self) -> tuple[pd.DataFrame, np.ndarray]:
        return self.frame[~self.test_mask], self.y[~self.test_mask]

    @property
    def test(self) -> tuple[pd.DataFrame, np.ndarray]:
        return self.frame[self.test_mask], self.y[self.test_mask]


def read_source(spec: TrainSpec, engine: Engine | None = None) -> pd.DataFrame:
    """The raw table named by ``spec.source``."""
    source = spec.source
    if source.startswith("sql:"):
        if engine is None:
            raise ConfigError(f"{source}: reading a database table needs a database engine")
        table = source.removeprefix("sql:")
        try:
            return pd.read_sql_table(table, engine)
        except ValueError as exc:
            raise NotFoundError(f"table {table!r} not found in the database: {exc}") from None
    path = example_path(source.removeprefix("example:")) if source.startswith("example:") else Path(source)
    if not path.is_file():
        raise NotFoundError(f"training data {path} does not exist")
    return pd.read_csv(path, na_values=spec.missing_values, keep_default_na=False, low_memory=False)


def _label_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        return values.map(lambda v: str(int(v)) if float(v).is_integer() else str(v), na_action="ignore")
    return values.map(lambda v: str(v).strip(), na_action="ignore")


def positive_label(labels: pd.Series, given: str | None) -> str:
    """The label value counted as positive: ``given``, or the obvious one of two (1, Yes, True)."""
    seen = sorted(labels.dropna().unique().tolist())
    if given is not None:
        if given not in seen:
            raise ConfigError(f"positive label {given!r} does not occur; the label has {seen[:10]}")
        return given
    if len(seen) != 2:
        raise ConfigError(
            f"the label must have two values to infer the positive one, it has {seen[:10]}: pass --positive"
        )
    yes = [v for v in seen if v.lower() in _YES]
    if len(yes) != 1:
        raise ConfigError(f"cannot tell which of {seen} is positive: pass --positive")
    return str(yes[0])


def row_keys(frame: pd.DataFrame, id_column: str | None) -> pd.Series:
    """One string per row that names it: its id, or else its raw content."""
    if id_column:
        return frame[id_column].astype(str)
    return pd.Series(pd.util.hash_pandas_object(frame.astype(str), index=False).astype(str), index=frame.index)


def split_mask(keys: pd.Series, test_size: float) -> np.ndarray:
    """True for held-out rows; stable for a row across runs because it hashes the row's key."""
    hashed = pd.util.hash_pandas_object(keys.astype(str), index=False).to_numpy()
    mask: np.ndarray = (hashed % np.uint64(10_000)) < np.uint64(round(test_size * 10_000))
    return mask


def fingerprint(frame: pd.DataFrame, y: np.ndarray) -> str:
    """sha256 of the training table's columns and values: the same data gives the same print."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    digest.update(np.asarray(y, dtype=np.int8).tobytes())
    return digest.hexdigest()


def load_labelled(
    spec: TrainSpec,
    *,
    engine: Engine | None = None,
    outcomes: pd.DataFrame | None = None,
    frame: pd.DataFrame | None = None,
) -> LabelledTable:
    """Read, label, type and split the table of ``spec``.

    ``outcomes`` holds recorded outcomes: feature columns plus ``_y`` (0/1) and ``_key``
    (the record id, which decides the row's side of the split).
    """
    raw = read_source(spec, engine) if frame is None else frame
    if spec.label not in raw.columns:
        raise ConfigError(
            f"label column {spec.label!r} is not in the data; columns: {', '.join(map(str, raw.columns))}"
        )
    labels = _label_text(raw[spec.label])
    raw = raw[labels.notna()].reset_index(drop=True)
    labels = labels[labels.notna()].reset_index(drop=True)
    positive = positive_label(labels, spec.positive)
    y = (labels == positive).to_numpy(dtype=np.int8)
    features = raw.drop(columns=[spec.label])
    extra_keys = pd.Series([None] * len(features), dtype=object)
    if outcomes is not None and len(outcomes):
        extra = outcomes.drop(columns=["_y", "_key", spec.label], errors="ignore")
        features = pd.concat([features, extra], ignore_index=True)
        extra_keys = pd.concat([extra_keys, outcomes["_key"].astype(object)], ignore_index=True)
        y = np.concatenate([y, outcomes["_y"].to_numpy(dtype=np.int8)])
        log.info("added %d recorded outcomes to the training data", len(extra))
    if spec.sample is not None and len(features) > spec.sample:
        keep = np.random.default_rng(0).choice(len(features), size=spec.sample, replace=False)
        keep.sort()
        features, y = features.iloc[keep].reset_index(drop=True), y[keep]
        extra_keys = extra_keys.iloc[keep].reset_index(drop=True)
    schema = infer_schema(
        features,
        label=spec.label,
        positive=positive,
        drop=spec.drop,
        roles=spec.roles,
        missing_values=spec.missing_values,
    )
    keys = row_keys(features, schema.id_column).where(extra_keys.isna(), extra_keys)
    mask = split_mask(keys, spec.test_size)
    if len(np.unique(y[mask])) < 2 or len(np.unique(y[~mask])) < 2:
        raise ConfigError(f"too few rows ({len(y)}) to hold out both classes; add data")
    return LabelledTable(frame=features, y=y, test_mask=mask, schema=schema, fingerprint=fingerprint(features, y))
