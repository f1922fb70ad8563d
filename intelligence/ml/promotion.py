"""Train, evaluate and decide: the learning loop's one place for champion/challenger rules.

A challenger is promoted only when its ROC AUC on held-out rows beats the champion's on
the same rows by the configured margin; otherwise the champion stays and the registry
records why. Both are judged on rows neither trained on (see ``data.split_mask``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from circuits.errors import ConfigError
from intelligence.ml.data import LabelledTable, load_labelled
from intelligence.ml.examples import default_spec
from intelligence.ml.metrics import score_metrics
from intelligence.ml.outcomes import count_outcomes, outcomes_frame
from intelligence.ml.registry import ModelRegistry, VersionInfo
from intelligence.ml.spec import Metrics, TrainSpec
from intelligence.ml.training import TrainedModel, predict_proba, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainResult:
    """What a retraining did: the challenger, the champion after it, and why."""

    promoted: bool
    reason: str
    challenger: VersionInfo
    champion: VersionInfo
    challenger_metrics: Metrics
    champion_metrics: Metrics | None


def resolve_spec(registry: ModelRegistry, name: str, spec: TrainSpec | None) -> TrainSpec:
    """``spec``, else the champion's training spec, else the shipped example's for ``name``."""
    if spec is not None:
        return spec
    champion = registry.champion(name)
    if champion is not None:
        return champion.spec
    shipped = default_spec(name)
    if shipped is None:
        raise ConfigError(f"model {name!r} has no champion and no shipped example: say which data to train on")
    return shipped


def load_table(registry: ModelRegistry, name: str, spec: TrainSpec) -> LabelledTable:
    """The labelled table of ``spec`` plus the outcomes recorded for ``name`` (if the spec wants them)."""
    engine: Engine = registry.engine
    extra = outcomes_frame(engine, name) if spec.include_outcomes and count_outcomes(engine, name) else None
    return load_labelled(spec, engine=engine, outcomes=extra)


def train_and_register(
    registry: ModelRegistry,
    name: str,
    spec: TrainSpec,
    *,
    engine: str = "flaml",
    budget_s: float = 60,
    run_key: str | None = None,
    promote_first: bool = True,
) -> tuple[VersionInfo, TrainedModel]:
    """Train a challenger and register it; the very first version of a name becomes champion."""
    trained = train(load_table(registry, name, spec), engine=engine, budget_s=budget_s)
    info = registry.register(name, trained, spec, run_key=run_key)
    if promote_first and registry.champion(name) is None:
        info = registry.promote(
            name,
            info.version,
            "first model of this name",
            run_key=run_key,
            details={"challenger": trained.metrics.model_dump()},
        )
    return info, trained


def evaluate_version(registry: ModelRegistry, info: VersionInfo, table: LabelledTable) -> Metrics:
    """Metrics of a registered version on ``table``'s held-out rows."""
    X, y = table.test
    return score_metrics(y, predict_proba(registry.load(info), info.schema, X), n_train=0)


def decide(challenger: Metrics, champion: Metrics, margin: float) -> tuple[bool, str]:
    """Promote when the challenger's held-out ROC AUC gains at least ``margin``; say why either way."""
    gain = challenger.roc_auc - champion.roc_auc
    facts = (
        f"challenger ROC AUC {challenger.roc_auc:.4f} vs champion {champion.roc_auc:.4f} "
        f"on the same {challenger.n_test:,} held-out rows (gain {gain:+.4f}, margin {margin:.4f})"
    )
    if gain >= margin:
        return True, f"promoted: {facts}"
    return False, f"champion kept: {facts}"


def retrain(
    registry: ModelRegistry,
    name: str,
    *,
    margin: float,
    spec: TrainSpec | None = None,
    engine: str = "flaml",
    budget_s: float = 60,
    run_key: str | None = None,
) -> RetrainResult:
    """Train a challenger for ``name`` and promote it only if it beats the champion by ``margin``."""
    spec = resolve_spec(registry, name, spec)
    champion = registry.champion(name)
    challenger, trained = train_and_register(
        registry, name, spec, engine=engine, budget_s=budget_s, run_key=run_key, promote_first=False
    )
    if champion is None:
        info = registry.promote(name, challenger.version, "first model of this name", run_key=run_key)
        return RetrainResult(True, "first model of this name", info, info, trained.metrics, None)
    champion_metrics = evaluate_version(registry, champion, trained.table)
    promoted, reason = decide(trained.metrics, champion_metrics, margin)
    details: dict[str, Any] = {
        "challenger": trained.metrics.model_dump(),
        "champion": champion_metrics.model_dump(),
        "margin": margin,
        "data_fingerprint": trained.fingerprint,
    }
    if promoted:
        challenger = registry.promote(name, challenger.version, reason, details=details, run_key=run_key)
        champion = challenger
    else:
        challenger = registry.refuse(name, challenger.version, reason, details=details, run_key=run_key)
    return RetrainResult(promoted, reason, challenger, champion, trained.metrics, champion_metrics)
