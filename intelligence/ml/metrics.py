"""Held-out metrics: how well a model ranks (ROC AUC, PR AUC) and how honest its probabilities are."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from circuits.errors import PermanentError
from intelligence.ml.spec import Metrics


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Mean gap between predicted and observed positive rate, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            gap += in_bin.mean() * abs(proba[in_bin].mean() - y[in_bin].mean())
    return float(gap)


def score_metrics(y: np.ndarray, proba: np.ndarray, n_train: int = 0) -> Metrics:
    """Metrics of probabilities ``proba`` against 0/1 labels ``y``."""
    y = np.asarray(y, dtype=int)
    proba = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    if len(np.unique(y)) < 2:
        raise PermanentError(f"held-out data has only one class ({len(y)} rows): metrics need both")
    return Metrics(
        roc_auc=float(roc_auc_score(y, proba)),
        pr_auc=float(average_precision_score(y, proba)),
        brier=float(brier_score_loss(y, proba)),
        log_loss=float(log_loss(y, proba, labels=[0, 1])),
        ece=expected_calibration_error(y, proba),
        accuracy=float(((proba >= 0.5).astype(int) == y).mean()),
        base_rate=float(y.mean()),
        n_test=int(len(y)),
        n_train=int(n_train),
    )
