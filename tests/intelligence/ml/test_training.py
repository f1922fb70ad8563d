"""Training with AutoML and honest held-out metrics on both shipped examples."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from circuits.errors import ConfigError
from intelligence.ml.automl import BaselineEngine, FlamlEngine, available_engines, get_engine
from intelligence.ml.training import predict_proba, train


def test_lead_model_metrics_are_sane_on_held_out_rows(leads_model) -> None:  # type: ignore[no-untyped-def]
    m = leads_model.metrics
    assert 0.85 < m.roc_auc <= 1.0, m.summary()
    assert 0.7 < m.pr_auc <= 1.0
    # better calibrated than always answering the base rate (a 2 s budget may stop at a
    # coarse first model on a busy machine, so calibration is held to that honest floor)
    assert 0.0 < m.brier < m.base_rate * (1 - m.base_rate)
    assert 0.0 <= m.ece < 0.25
    assert 0.3 < m.base_rate < 0.5
    assert m.n_test + m.n_train == 4000 and 800 < m.n_test < 1200
    assert leads_model.engine == "flaml"


def test_lead_model_reads_no_leaking_column(leads_model) -> None:  # type: ignore[no-untyped-def]
    features = leads_model.schema.feature_names
    assert not [c for c in features if c in ("Tags", "Lead Quality") or c.startswith("Asymmetrique")]
    assert all(c.reference is not None or c.role == "categorical" for c in leads_model.schema.columns)


def test_churn_model_metrics_are_sane(churn_model) -> None:  # type: ignore[no-untyped-def]
    m = churn_model.metrics
    assert 0.78 < m.roc_auc <= 1.0, m.summary()
    assert 0.45 < m.pr_auc and m.brier < m.base_rate * (1 - m.base_rate)
    assert "customerID" not in churn_model.schema.feature_names


def test_held_out_rows_were_not_trained_on(leads_model) -> None:  # type: ignore[no-untyped-def]
    table = leads_model.table
    train_ids = set(table.frame.loc[~table.test_mask, "Prospect ID"])
    test_ids = set(table.frame.loc[table.test_mask, "Prospect ID"])
    assert not train_ids & test_ids
    X, y = table.test
    proba = predict_proba(leads_model.pipeline, leads_model.schema, X)
    assert proba.shape == (len(y),) and np.all((proba >= 0) & (proba <= 1))


def test_engines_behind_one_interface(leads_table) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(get_engine("flaml"), FlamlEngine)
    assert "flaml" in available_engines() and "baseline" in available_engines()
    with pytest.raises(ConfigError, match="unknown AutoML engine"):
        get_engine("h2o")
    if importlib.util.find_spec("autosklearn") is None:
        with pytest.raises(ConfigError, match="not installed"):
            get_engine("autosklearn")
    baseline = train(leads_table, engine="baseline")
    assert isinstance(get_engine("baseline"), BaselineEngine)
    assert baseline.estimator in ("LogisticRegression", "HistGradientBoostingClassifier")
    assert baseline.metrics.roc_auc > 0.85
