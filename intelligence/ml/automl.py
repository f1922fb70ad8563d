"""AutoML behind one small interface, so the engine can change without touching training.

FLAML is the engine that installs here. auto-sklearn plugs in where it installs (it does
not on Python 3.11 with current scikit-learn); ``baseline`` picks the better of logistic
regression and histogram gradient boosting and needs nothing beyond scikit-learn.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from circuits.errors import ConfigError

log = logging.getLogger(__name__)


class AutoMLEngine(Protocol):
    """Search models within a time budget; return one fitted scikit-learn-style classifier."""

    name: str

    def fit(self, X: np.ndarray, y: np.ndarray, budget_s: float) -> Any:
        """Fit on preprocessed numeric ``X`` and 0/1 ``y``; the result has ``predict_proba``."""
        ...


class FlamlEngine:
    """FLAML's cost-frugal search (LightGBM, XGBoost, random forests, linear models), by ROC AUC."""

    name = "flaml"

    #: Learners searched. FLAML's default list also has SGD, whose modified-Huber
    #: "probabilities" are clipped to 0 or 1 (Brier and calibration suffer), and k-NN.
    ESTIMATORS: tuple[str, ...] = ("lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree", "histgb", "lrl1", "lrl2")

    def __init__(self, seed: int = 0, n_jobs: int = 1, estimators: tuple[str, ...] | None = None) -> None:
        self.seed = seed
        self.n_jobs = n_jobs
        self.estimators = estimators or self.ESTIMATORS

    def fit(self, X: np.ndarray, y: np.ndarray, budget_s: float) -> Any:
        from flaml.automl import AutoML

        logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)
        automl = AutoML()  # type: ignore[no-untyped-call]
        automl.fit(
            X,
            y,
            task="classification",
            metric="roc_auc",
            time_budget=max(1.0, float(budget_s)),
            seed=self.seed,
            n_jobs=self.n_jobs,
            verbose=0,
            estimator_list=list(self.estimators),
        )
        log.info("flaml picked %s: %s", automl.best_estimator, automl.best_config)
        return automl.model.estimator


class AutoSklearnEngine:
    """auto-sklearn, where it installs (import guarded: not on Python 3.11 today)."""

    name = "autosklearn"

    def fit(self, X: np.ndarray, y: np.ndarray, budget_s: float) -> Any:
        from autosklearn.classification import AutoSklearnClassifier

        model = AutoSklearnClassifier(time_left_for_this_task=max(30, int(budget_s)), seed=1)
        model.fit(X, y)
        return model


class BaselineEngine:
    """Better of LogisticRegression and HistGradientBoosting on an inner validation split."""

    name = "baseline"

    def fit(self, X: np.ndarray, y: np.ndarray, budget_s: float) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split

        candidates: list[Any] = [LogisticRegression(max_iter=2000), HistGradientBoostingClassifier(random_state=0)]
        X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
        scores = [roc_auc_score(y_val, m.fit(X_fit, y_fit).predict_proba(X_val)[:, 1]) for m in candidates]
        best = candidates[int(np.argmax(scores))]
        log.info("baseline picked %s (validation ROC AUC %.3f)", type(best).__name__, max(scores))
        return best.fit(X, y)


_ENGINES: dict[str, tuple[Callable[[], AutoMLEngine], str | None]] = {
    "flaml": (FlamlEngine, "flaml"),
    "autosklearn": (AutoSklearnEngine, "autosklearn"),
    "baseline": (BaselineEngine, None),
}


def available_engines() -> list[str]:
    """Engines whose libraries import here."""
    return [n for n, (_, mod) in _ENGINES.items() if mod is None or importlib.util.find_spec(mod) is not None]


def get_engine(name: str) -> AutoMLEngine:
    """The AutoML engine called ``name``; a ConfigError says what to install when it is missing."""
    try:
        factory, module = _ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown AutoML engine {name!r}; choose one of {', '.join(_ENGINES)}") from None
    if module is not None and importlib.util.find_spec(module) is None:
        hint = "pip install 'circuit-os[ml]'" if name == "flaml" else "pip install auto-sklearn (Python <= 3.10)"
        raise ConfigError(f"AutoML engine {name!r} is not installed: {hint}")
    return factory()


def timed_fit(engine: AutoMLEngine, X: np.ndarray, y: np.ndarray, budget_s: float) -> tuple[Any, float]:
    """Fit and return (model, seconds taken).

    Native thread pools (BLAS, OpenMP) are held to one thread, for fitting and, through
    ``n_jobs``, for predicting: workers already run one process per core, and on a busy
    2-core machine spinning threads made logistic regression 50x and gradient boosting
    10x slower than a single thread.
    """
    from threadpoolctl import threadpool_limits

    started = time.monotonic()
    with threadpool_limits(limits=1):
        model = engine.fit(X, y, budget_s)
    if "n_jobs" in getattr(model, "get_params", dict)():
        model.set_params(n_jobs=1)
    return model, time.monotonic() - started
