"""The ``ml.*`` actions: lead scores, churn risk, training, evaluation, drift and the learning loop.

Two AI-native events come from here: ``ml.score_crossed`` (``ml.predict`` with ``key`` and
``levels``) and ``ml.drift_detected`` (``ml.drift``).

Importing this module is cheap (pydantic only); scikit-learn, pandas and FLAML load
inside the actions, once per worker process. The registry and the champion-model cache
are per-process resources reached through ``ctx.resource``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circuits.actions import ActionContext, action
from circuits.errors import ConfigError, NotFoundError, PermanentError, RetryableError
from intelligence.ml.contracts import (
    ChampionOutput,
    ChurnInput,
    ChurnOutput,
    ChurnRisk,
    Crossing,
    DriftInput,
    DriftOutput,
    EvaluateInput,
    EvaluateOutput,
    OutcomeInput,
    OutcomeOutput,
    PredictInput,
    Prediction,
    PredictOutput,
    PromoteInput,
    RetrainInput,
    RetrainOutput,
    RollbackInput,
    TrainInput,
    TrainOutput,
)
from intelligence.ml.spec import TrainSpec

if TYPE_CHECKING:
    import redis

    from intelligence.ml.registry import ModelRegistry
    from intelligence.ml.serving import ModelCache

log = logging.getLogger(__name__)

REGISTRY_RESOURCE = "ml.registry"
MODELS_RESOURCE = "ml.models"
REDIS_RESOURCE = "redis"


def _settings(ctx: ActionContext) -> Any:
    if ctx.settings is not None:
        return ctx.settings
    from circuits.settings import get_settings

    return get_settings()


def registry(ctx: ActionContext) -> ModelRegistry:
    """The process's model registry (database engine + models folder under settings.home)."""

    def build() -> ModelRegistry:
        from intelligence.ml.registry import ModelRegistry
        from storage.base import make_engine

        settings = _settings(ctx)
        return ModelRegistry(make_engine(settings.database_url), Path(settings.home) / "models")

    return ctx.resource(REGISTRY_RESOURCE, build)


def models(ctx: ActionContext) -> ModelCache:
    """The process's cache of loaded champion models."""
    from intelligence.ml.serving import ModelCache

    reg = registry(ctx)  # built first: resource factories must not nest (the resource lock is not reentrant)
    return ctx.resource(MODELS_RESOURCE, lambda: ModelCache(reg))


def redis_client(ctx: ActionContext) -> redis.Redis:
    """The process's Redis client (settings.redis_url): last scores and live input samples."""
    from intelligence.ml.live import connect

    url = _settings(ctx).redis_url
    return ctx.resource(REDIS_RESOURCE, lambda: connect(url))


@contextmanager
def _database() -> Iterator[None]:
    """A busy or unreachable database is worth a retry; everything else is not."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        raise RetryableError(f"model registry database unavailable: {exc.orig or exc}") from None


def _run_key(ctx: ActionContext) -> str:
    return f"{ctx.circuit}:{ctx.run_id}:{ctx.step_id}"


def _token(ctx: ActionContext) -> str:
    return f"{ctx.run_id}:{ctx.step_id}"


def _score(
    ctx: ActionContext, name: str, records: list[dict[str, Any]], explain: bool, top_k: int
) -> tuple[int, list[float], list[list[str]], list[str | None]]:
    from intelligence.ml.live import add_sample
    from intelligence.ml.scoring import to_score

    with _database():
        scorer = models(ctx).champion(name)
    add_sample(redis_client(ctx), name, scorer.version, records, scorer.schema.feature_names, _token(ctx))
    if explain and top_k:
        proba, why = scorer.explain(records, top_k=top_k)
        reasons = [[r.text() for r in rs] for rs in why]
    else:
        proba, reasons = scorer.proba(records), [[] for _ in records]
    id_col = scorer.schema.id_column
    ids = [str(r[id_col]) if id_col and r.get(id_col) is not None else None for r in records]
    return scorer.version, [to_score(p) for p in proba], reasons, ids


def _crossings(ctx: ActionContext, inp: PredictInput, score: float) -> tuple[float | None, list[Crossing]]:
    """Swap in the key's new score; emit ``ml.score_crossed`` for each level it crossed."""
    from intelligence.ml.live import crossings, swap_score

    if inp.key is None or inp.levels is None:
        return None, []
    tenant = str(ctx.event.get("tenant") or "default")
    previous = swap_score(redis_client(ctx), tenant, inp.model, inp.key, score, _token(ctx))
    crossed = [Crossing(level=lv, direction=d) for lv, d in crossings(previous, score, inp.levels)]
    for c in crossed:
        data = {"model": inp.model, "key": inp.key, "level": c.level, "score": score}
        ctx.emit("ml.score_crossed", {**data, "previous": previous, "direction": c.direction}, subject=inp.key)
    return previous, crossed


@action("ml.predict", queue="ml", retries=3, timeout_s=60)
def predict(ctx: ActionContext, inp: PredictInput) -> PredictOutput:
    """Score leads 0-100 with the champion model, with the top reasons; one record or a batch.

    With ``key`` and ``levels`` (0-100, the scale of the score), the key's previous score is
    kept in Redis and each level the new score crosses, up or down, emits ``ml.score_crossed``
    {model, key, level, score, previous, direction} with the key as subject. Every scored
    record also joins the live sample that ``ml.drift`` compares with the training rows.
    """
    version, scores, reasons, ids = _score(ctx, inp.model, inp.batch, inp.explain, inp.top_k)
    single = inp.record is not None
    previous, crossed = _crossings(ctx, inp, scores[0]) if single else (None, [])
    return PredictOutput(
        model=inp.model,
        model_version=version,
        count=len(scores),
        score=scores[0] if single else None,
        reasons=reasons[0] if single else [],
        predictions=[]
        if single
        else [
            Prediction(score=s, probability=s / 100.0, reasons=r, id=i)
            for s, r, i in zip(scores, reasons, ids, strict=True)
        ],
        previous_score=previous,
        crossed=crossed,
    )


def _band(risk: float) -> str:
    return "low" if risk < 30 else "medium" if risk < 60 else "high"


@action("ml.churn_risk", queue="ml", retries=3, timeout_s=60)
def churn_risk(ctx: ActionContext, inp: ChurnInput) -> ChurnOutput:
    """Churn risk 0-100 (low/medium/high) of one customer or a batch, with the top reasons."""
    version, risks, reasons, ids = _score(ctx, inp.model, inp.batch, inp.explain, inp.top_k)
    if inp.record is not None:
        return ChurnOutput(
            model=inp.model, model_version=version, count=1, risk=risks[0], band=_band(risks[0]), reasons=reasons[0]
        )
    return ChurnOutput(
        model=inp.model,
        model_version=version,
        count=len(risks),
        customers=[
            ChurnRisk(risk=r, band=_band(r), reasons=w, id=i) for r, w, i in zip(risks, reasons, ids, strict=True)
        ],
    )


@action("ml.drift", queue="ml", retries=2, timeout_s=120)
def drift(ctx: ActionContext, inp: DriftInput) -> DriftOutput:
    """Measure input drift (PSI per input) of live predictions against the model's training rows.

    Emits ``ml.drift_detected`` {model, version, features: {name: psi}, limit, rows} when any
    input reaches ``limit``. Fewer than ``min_rows`` live rows is no verdict, not an error.
    """
    from intelligence.ml.drift import measure
    from intelligence.ml.live import read_sample

    skip = DriftOutput(model=inp.model, version=inp.version, checked=False, limit=inp.limit)
    with _database():
        if inp.version is None and registry(ctx).champion(inp.model) is None and inp.missing == "skip":
            return skip.model_copy(update={"reason": f"model {inp.model!r} has no champion yet"})
        info = registry(ctx).get(inp.model, inp.version)
    skip.version = info.version
    if info.schema.profile is None:
        why = f"{inp.model} v{info.version} was trained before training profiles were kept"
        if inp.missing == "skip":
            return skip.model_copy(update={"reason": why})
        raise PermanentError(f"{why}: retrain it (ml.retrain) to measure its drift, or pass missing: skip")
    rows = read_sample(redis_client(ctx), inp.model, info.version)
    if len(rows) < inp.min_rows:
        reason = f"{len(rows)} live rows scored by v{info.version}, fewer than min_rows={inp.min_rows}"
        return skip.model_copy(update={"rows": len(rows), "reason": reason})
    report = measure(info.schema, rows, inp.limit)
    if report.drifted:
        features = {n: report.scores[n] for n in report.drifted}
        data = {"model": inp.model, "version": info.version, "features": features, "limit": inp.limit}
        ctx.emit("ml.drift_detected", {**data, "rows": report.rows}, subject=inp.model)
    return DriftOutput(
        model=inp.model,
        version=info.version,
        checked=True,
        rows=report.rows,
        limit=inp.limit,
        scores=report.scores,
        drifted=report.drifted,
    )


def _spec(reg: ModelRegistry, inp: TrainInput) -> TrainSpec:
    """The training spec the input asks for, filled in from the champion or shipped example."""
    from intelligence.ml.promotion import resolve_spec

    if inp.data is None:
        spec = resolve_spec(reg, inp.name, None)
    else:
        if inp.label is None:
            raise ConfigError(f"ml.train {inp.name}: 'label' is needed with 'data'")
        local = not inp.data.startswith(("sql:", "example:"))
        spec = TrainSpec(source=str(Path(inp.data).resolve()) if local else inp.data, label=inp.label)
    updates = {
        k: v
        for k, v in {
            "label": inp.label,
            "drop": inp.drop,
            "roles": inp.roles,
            "positive": inp.positive,
            "sample": inp.sample,
        }.items()
        if v is not None
    }
    return spec.model_copy(update=updates)


@action("ml.train", queue="ml", retries=0)
def train(ctx: ActionContext, inp: TrainInput) -> TrainOutput:
    """Train and register a model version (the first of a name becomes champion)."""
    from intelligence.ml.promotion import train_and_register

    reg = registry(ctx)
    with _database():
        info = reg.by_run_key(inp.name, _run_key(ctx))
        if info is None:
            budget = inp.budget_s or _settings(ctx).ml_train_budget_s
            info, _ = train_and_register(
                reg, inp.name, _spec(reg, inp), engine=inp.engine, budget_s=budget, run_key=_run_key(ctx)
            )
            info = reg.get(inp.name, info.version)
    return TrainOutput(
        name=info.name,
        version=info.version,
        status=info.status,
        estimator=info.estimator,
        metrics=_numbers(info.metrics.model_dump()),
        seconds=round(info.train_seconds, 2),
        features=info.schema.feature_names,
        ignored=info.schema.ignored,
    )


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


@action("ml.evaluate", queue="ml", retries=1)
def evaluate(ctx: ActionContext, inp: EvaluateInput) -> EvaluateOutput:
    """Measure a model version on held-out rows (or on every row of new data)."""
    from intelligence.ml.data import load_labelled
    from intelligence.ml.metrics import score_metrics
    from intelligence.ml.promotion import load_table
    from intelligence.ml.training import predict_proba

    reg = registry(ctx)
    with _database():
        info = reg.get(inp.name, inp.version)
        spec = info.spec if inp.data is None else info.spec.model_copy(update={"source": inp.data})
        table = load_table(reg, inp.name, spec) if inp.data is None else load_labelled(spec, engine=reg.engine)
        X, y = table.test if inp.holdout_only else (table.frame, table.y)
        metrics = score_metrics(y, predict_proba(models(ctx).version(inp.name, info.version).pipeline, info.schema, X))
    return EvaluateOutput(name=inp.name, version=info.version, metrics=_numbers(metrics.model_dump()))


@action("ml.retrain", queue="ml", retries=0)
def retrain(ctx: ActionContext, inp: RetrainInput) -> RetrainOutput:
    """Train a challenger; promote it only if it beats the champion by the margin, else record why."""
    from intelligence.ml.promotion import retrain as run_retrain

    reg = registry(ctx)
    settings = _settings(ctx)
    with _database():
        done = reg.by_run_key(inp.name, _run_key(ctx))
        if done is not None:
            return _replay(reg, inp.name, done.version)
        asked = (inp.data, inp.label, inp.drop, inp.roles, inp.positive, inp.sample)
        spec = _spec(reg, inp) if any(v is not None for v in asked) else None
        margin = settings.ml_promotion_margin if inp.margin is None else inp.margin
        result = run_retrain(
            reg,
            inp.name,
            margin=margin,
            spec=spec,
            engine=inp.engine,
            budget_s=inp.budget_s or settings.ml_train_budget_s,
            run_key=_run_key(ctx),
        )
    return RetrainOutput(
        name=inp.name,
        promoted=result.promoted,
        reason=result.reason,
        champion_version=result.champion.version,
        challenger_version=result.challenger.version,
        challenger_metrics=_numbers(result.challenger_metrics.model_dump()),
        champion_metrics=_numbers(result.champion_metrics.model_dump()) if result.champion_metrics else None,
    )


def _replay(reg: ModelRegistry, name: str, version: int) -> RetrainOutput:
    """The answer of a retraining already done in this run and step (a retried task)."""
    decision = next((d for d in reg.decisions(name) if d["version"] == version), None)
    if decision is None:
        raise NotFoundError(f"{name} v{version} was trained in this step but no decision was recorded")
    champion = reg.get(name)
    details = decision["details"]
    return RetrainOutput(
        name=name,
        promoted=decision["kind"] == "promoted",
        reason=decision["reason"],
        champion_version=champion.version,
        challenger_version=version,
        challenger_metrics=_numbers(details.get("challenger") or reg.get(name, version).metrics.model_dump()),
        champion_metrics=_numbers(details["champion"]) if details.get("champion") else None,
    )


@action("ml.record_outcome", queue="ml", retries=3, timeout_s=30)
def record_outcome(ctx: ActionContext, inp: OutcomeInput) -> OutcomeOutput:
    """Store a real outcome (converted/lost, churned/stayed) as a labelled row for the next retraining."""
    from intelligence.ml.outcomes import outcome_label
    from intelligence.ml.outcomes import record_outcome as store

    reg = registry(ctx)
    with _database():
        record_id = inp.record_id
        if record_id is None:
            champion = reg.champion(inp.model)
            id_col = champion.schema.id_column if champion else None
            found = inp.record.get(id_col) if id_col else None
            record_id = str(found) if found is not None else _run_key(ctx)
        new = store(reg.engine, inp.model, record_id, inp.record, inp.outcome)
    return OutcomeOutput(model=inp.model, record_id=record_id, label=outcome_label(inp.outcome), new=new)


@action("ml.promote", queue="ml", retries=1)
def promote(ctx: ActionContext, inp: PromoteInput) -> ChampionOutput:
    """Make a given version the champion (the current one is retired)."""
    reg = registry(ctx)
    with _database():
        before = reg.champion(inp.name)
        info = reg.promote(inp.name, inp.version, inp.reason, run_key=_run_key(ctx))
    return ChampionOutput(
        name=inp.name, champion_version=info.version, previous_version=before.version if before else None
    )


@action("ml.rollback", queue="ml", retries=1)
def rollback(ctx: ActionContext, inp: RollbackInput) -> ChampionOutput:
    """Bring back the previous champion; the current one is retired."""
    reg = registry(ctx)
    with _database():
        before = reg.get(inp.name)
        info = reg.rollback(inp.name, inp.reason)
    return ChampionOutput(name=inp.name, champion_version=info.version, previous_version=before.version)
