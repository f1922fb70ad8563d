"""Benchmark the ML engine: AutoML vs plain baselines, batch throughput, single-prediction latency.

Prints figures; it is not a test. On the same 25% stratified split of each shipped data set
(leads without the leaking columns, Telco churn) it fits LogisticRegression and
HistGradientBoosting on our preprocessing, then FLAML within the budget, and prints the
held-out ROC AUC side by side. Then it registers the lead model and measures batch scoring
(target >= 20,000 leads/s) and single-prediction latency p50 (target <= 5 ms), both on the
Scorer and through the ``ml.predict`` action (registry lookup and pydantic included).

    python bench/bench_ml.py [--budget 120] [--datasets leads churn]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from circuits.actions import ActionContext  # noqa: E402
from circuits.settings import Settings  # noqa: E402
from intelligence.ml import actions  # noqa: E402
from intelligence.ml.automl import FlamlEngine  # noqa: E402
from intelligence.ml.contracts import PredictInput  # noqa: E402
from intelligence.ml.data import LabelledTable, load_labelled  # noqa: E402
from intelligence.ml.examples import EXAMPLE_FILES, EXAMPLES  # noqa: E402
from intelligence.ml.metrics import score_metrics  # noqa: E402
from intelligence.ml.scoring import Scorer  # noqa: E402
from intelligence.ml.spec import Metrics  # noqa: E402
from intelligence.ml.training import TrainedModel, fit_pipeline, predict_proba  # noqa: E402
from storage.base import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

REFERENCE = {"leads": {"LR": 0.909, "HGB": 0.914}, "churn": {"LR": 0.844, "HGB": 0.831}}


class _Fixed:
    """An 'engine' that fits one given estimator, to run the baselines through the same pipeline."""

    def __init__(self, estimator: Any, name: str) -> None:
        self.estimator, self.name = estimator, name

    def fit(self, X: np.ndarray, y: np.ndarray, budget_s: float) -> Any:
        return self.estimator.fit(X, y)


def _fit(
    table: LabelledTable, train_idx: np.ndarray, test_idx: np.ndarray, engine: Any, budget_s: float
) -> tuple[Pipeline, Any, Metrics, float]:
    X_train, y_train = table.frame.iloc[train_idx], table.y[train_idx]
    X_test, y_test = table.frame.iloc[test_idx], table.y[test_idx]
    pipeline, schema, seconds = fit_pipeline(table.schema, X_train, y_train, engine, budget_s)
    metrics = score_metrics(y_test, predict_proba(pipeline, schema, X_test), n_train=len(y_train))
    return pipeline, schema, metrics, seconds


def compare(name: str, budget_s: float) -> TrainedModel:
    """Print LR, HGB and AutoML on the same split; return the AutoML model."""
    table = load_labelled(EXAMPLES[name])
    idx = np.arange(len(table.y))
    train_idx, test_idx = train_test_split(idx, test_size=0.25, stratify=table.y, random_state=0)
    rows = []
    with threadpool_limits(limits=1):
        for label, est in (
            ("LR", LogisticRegression(max_iter=2000)),
            ("HGB", HistGradientBoostingClassifier(random_state=0)),
        ):
            _, _, m, s = _fit(table, train_idx, test_idx, _Fixed(est, label), 0)
            rows.append((label, type(est).__name__, m, s))
    pipeline, schema, m, s = _fit(table, train_idx, test_idx, FlamlEngine(), budget_s)
    automl = (f"AutoML (FLAML {budget_s:.0f}s)", type(pipeline.steps[-1][1]).__name__, m, s)
    print(
        f"\n== {name}: {len(table.y):,} rows, {len(schema.columns)} features, "
        f"test = 25% stratified ({len(test_idx):,} rows), positive rate {table.y.mean():.3f}"
    )
    print(f"{'model':<22} {'estimator':<32} {'ROC AUC':>8} {'ref':>6} {'PR AUC':>7} {'Brier':>6} {'fit s':>6}")
    for label, est_name, met, secs in [*rows, automl]:
        ref = REFERENCE[name].get(label)
        print(
            f"{label:<22} {est_name:<32} {met.roc_auc:>8.4f} {ref if ref else '':>6} {met.pr_auc:>7.4f} "
            f"{met.brier:>6.4f} {secs:>6.1f}"
        )
    best = max(rows, key=lambda r: r[2].roc_auc)
    print(f"AutoML vs best baseline ({best[0]}): {m.roc_auc - best[2].roc_auc:+.4f} ROC AUC")
    fake = LabelledTable(table.frame, table.y, np.isin(idx, test_idx), schema, "bench")
    return TrainedModel(pipeline, schema, m, "bench", "flaml", automl[1], s, fake)


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000.0


def serving(model: TrainedModel) -> None:
    """Batch throughput and single-prediction latency of the lead model."""
    records = pd.read_csv(EXAMPLE_FILES["leads"], keep_default_na=False).to_dict("records")
    scorer = Scorer(model.pipeline, model.schema)
    print(f"\n== serving the lead model ({model.estimator}), {len(records):,} leads")
    best = min(_timed(lambda: scorer.proba(records)) for _ in range(3))
    print(
        f"batch scoring (Scorer.proba, {len(records):,} records): {len(records) / best:,.0f} leads/s (target >= 20,000)"
    )
    single = [_timed(lambda r=r: scorer.proba([r])) for r in records[:2000]]
    p50, p95 = _p(single, 50), _p(single, 95)
    print(f"single prediction (Scorer.proba): p50 {p50:.2f} ms, p95 {p95:.2f} ms (target p50 <= 5 ms)")

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(database_url=f"sqlite:///{home}/bench.db", home=Path(home))
        engine = make_engine(settings.database_url)
        upgrade(engine)
        ctx = ActionContext.for_test(settings=settings)
        reg = actions.registry(ctx)
        reg.register("lead_score", model, EXAMPLES["leads"])
        reg.promote("lead_score", 1, "bench")
        actions.predict(ctx, PredictInput(record=records[0]))  # load once
        best = min(_timed(lambda: actions.predict(ctx, PredictInput(records=records, explain=False))) for _ in range(3))
        print(f"batch via ml.predict (records={len(records):,}, explain=false): {len(records) / best:,.0f} leads/s")
        n = 1000
        best = _timed(lambda: actions.predict(ctx, PredictInput(records=records[:n], explain=True)))
        print(f"batch via ml.predict (records={n:,}, explain=true, top 3 reasons): {n / best:,.0f} leads/s")
        for explain in (False, True):
            lat = [
                _timed(lambda r=r, e=explain: actions.predict(ctx, PredictInput(record=r, explain=e)))
                for r in records[:1000]
            ]
            print(
                f"single via ml.predict (explain={str(explain).lower()}): p50 {_p(lat, 50):.2f} ms, "
                f"p95 {_p(lat, 95):.2f} ms"
            )
        ctx.resources.close()
        engine.dispose()


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=120.0, help="FLAML time budget per data set, seconds")
    parser.add_argument("--datasets", nargs="+", default=["leads", "churn"], choices=["leads", "churn"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    models = {name: compare(name, args.budget) for name in args.datasets}
    if "leads" in models:
        serving(models["leads"])
    print(f"\n(bench took {time.perf_counter() - started:.0f} s; one process, BLAS/OpenMP held to 1 thread)")


if __name__ == "__main__":
    main()
