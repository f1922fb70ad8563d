"""Train one model on a labelled table and measure it on the rows it never saw."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from intelligence.ml.automl import AutoMLEngine, get_engine, timed_fit
from intelligence.ml.data import LabelledTable
from intelligence.ml.drift import profile
from intelligence.ml.features import build_preprocessor, prepare_frame, with_references
from intelligence.ml.metrics import score_metrics
from intelligence.ml.spec import FeatureSchema, Metrics

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A fitted pipeline with the schema it reads, its held-out metrics and the data it came from."""

    pipeline: Pipeline
    schema: FeatureSchema
    metrics: Metrics
    fingerprint: str
    engine: str
    estimator: str
    seconds: float
    table: LabelledTable

    @property
    def n_train(self) -> int:
        return int((~self.table.test_mask).sum())


def predict_proba(pipeline: Any, schema: FeatureSchema, frame: pd.DataFrame) -> np.ndarray:
    """Positive-class probabilities for raw rows ``frame``."""
    return np.asarray(pipeline.predict_proba(prepare_frame(frame, schema))[:, 1], dtype=float)


def fit_pipeline(
    schema: FeatureSchema, X: pd.DataFrame, y: np.ndarray, engine: AutoMLEngine, budget_s: float
) -> tuple[Pipeline, FeatureSchema, float]:
    """Fit preprocessing, then let ``engine`` search models on its output, within ``budget_s``."""
    prepared = prepare_frame(X, schema)
    schema = profile(with_references(schema, prepared), prepared)  # the baseline of drift checks
    preprocessor = build_preprocessor(schema)
    matrix = preprocessor.fit_transform(prepared)
    model, seconds = timed_fit(engine, np.asarray(matrix, dtype=np.float64), y, budget_s)
    return Pipeline([("prep", preprocessor), ("model", model)]), schema, seconds


def train(table: LabelledTable, *, engine: str = "flaml", budget_s: float = 60) -> TrainedModel:
    """Train on ``table``'s training rows and evaluate on its held-out rows."""
    X_train, y_train = table.train
    X_test, y_test = table.test
    log.info(
        "training on %d rows (%d features), holding out %d, engine %s, budget %ss",
        len(X_train),
        len(table.schema.columns),
        len(X_test),
        engine,
        budget_s,
    )
    pipeline, schema, seconds = fit_pipeline(table.schema, X_train, y_train, get_engine(engine), budget_s)
    metrics = score_metrics(y_test, predict_proba(pipeline, schema, X_test), n_train=len(X_train))
    log.info("held-out %s", metrics.summary())
    return TrainedModel(
        pipeline=pipeline,
        schema=schema,
        metrics=metrics,
        fingerprint=table.fingerprint,
        engine=engine,
        estimator=type(pipeline.steps[-1][1]).__name__,
        seconds=seconds,
        table=table,
    )
