"""``circuit-os ml``: train, evaluate, list, promote and roll back models from a shell.

The group is attached to the main CLI by ``workers/cli.py`` (``cli.add_command(ml)``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from circuits.errors import CircuitError
from intelligence.ml.spec import DEFAULT_MISSING, TrainSpec

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(fn: F) -> F:
    """Our named errors become a one-line message and exit code 1, not a traceback."""

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CircuitError as exc:
            raise click.ClickException(str(exc)) from None

    return run  # type: ignore[return-value]


def _registry() -> Any:
    from circuits.settings import get_settings
    from intelligence.ml.registry import ModelRegistry
    from storage.base import make_engine
    from storage.migrate import upgrade

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return ModelRegistry(engine, Path(settings.home) / "models")


@contextmanager
def _quiet_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _roles(pairs: tuple[str, ...]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for pair in pairs:
        column, sep, role = pair.rpartition("=")
        if not sep or not column:
            raise click.BadParameter(f"{pair!r}: write COLUMN=ROLE", param_hint="--role")
        roles[column] = role
    return roles


@click.group()
def ml() -> None:
    """Lead scoring and churn models: train, evaluate, list, promote, roll back."""


@ml.command()
@click.option("--data", "data", help="CSV file with a label column (or example:leads / sql:TABLE).")
@click.option("--example", type=click.Choice(["leads", "churn"]), help="Train a shipped example.")
@click.option("--label", help="Name of the label column.")
@click.option("--name", required=True, help="Model name, e.g. lead_score.")
@click.option("--drop", multiple=True, help="Column (or pattern like 'Asymmetrique*') to leave out; repeatable.")
@click.option(
    "--role", "roles", multiple=True, help="Override a column's role: COLUMN=numeric|categorical|text|date|id."
)
@click.option("--missing", multiple=True, help="Extra value meaning 'not answered'; repeatable.")
@click.option("--positive", help="Label value counted as positive (inferred for 0/1, yes/no).")
@click.option("--budget", type=float, help="AutoML time budget in seconds (default: settings).")
@click.option("--engine", default="flaml", show_default=True, help="AutoML engine: flaml, autosklearn, baseline.")
@click.option("--sample", type=int, help="Train on at most this many rows.")
@_friendly
def train(
    data: str | None,
    example: str | None,
    label: str | None,
    name: str,
    drop: tuple[str, ...],
    roles: tuple[str, ...],
    missing: tuple[str, ...],
    positive: str | None,
    budget: float | None,
    engine: str,
    sample: int | None,
) -> None:
    """Train a model, register it and print its metrics on held-out rows."""
    from circuits.settings import get_settings
    from intelligence.ml.examples import EXAMPLES
    from intelligence.ml.progress import Progress
    from intelligence.ml.promotion import train_and_register

    if (data is None) == (example is None):
        raise click.UsageError("give --data FILE (with --label) or --example NAME")
    if example:
        spec = EXAMPLES[example].model_copy(deep=True)
        spec.drop = spec.drop + list(drop)
    elif data is not None:
        if not label:
            raise click.UsageError("--label is needed with --data")
        source = data if data.startswith(("sql:", "example:")) else str(Path(data).resolve())
        spec = TrainSpec(source=source, label=label, drop=list(drop))
    spec.roles.update(_roles(roles))  # type: ignore[arg-type]
    spec.missing_values = list(dict.fromkeys([*DEFAULT_MISSING, *missing]))
    spec.positive = positive or spec.positive
    spec.sample = sample
    budget_s = budget or get_settings().ml_train_budget_s
    reg = _registry()
    with Progress(f"training {name} ({engine})", budget_s), _quiet_warnings():
        info, trained = train_and_register(reg, name, spec, engine=engine, budget_s=budget_s)
    click.echo(f"{name} v{info.version} [{info.status}] {trained.estimator} in {trained.seconds:.1f}s")
    click.echo(trained.metrics.summary())
    click.echo(f"features ({len(trained.schema.columns)}): {', '.join(trained.schema.feature_names)}")
    if trained.schema.ignored:
        click.echo("left out: " + "; ".join(f"{c} ({why})" for c, why in trained.schema.ignored.items()))


@ml.command()
@click.argument("name")
@click.option("--version", type=int, help="Default: the champion.")
@click.option("--data", help="Labelled CSV to score; default: the model's own held-out rows.")
@click.option("--all-rows", is_flag=True, help="Score every row of --data, not only the held-out ones.")
@_friendly
def evaluate(name: str, version: int | None, data: str | None, all_rows: bool) -> None:
    """Print a model's metrics on rows it never saw in training."""
    from intelligence.ml.data import load_labelled
    from intelligence.ml.metrics import score_metrics
    from intelligence.ml.promotion import load_table
    from intelligence.ml.training import predict_proba

    reg = _registry()
    info = reg.get(name, version)
    with _quiet_warnings():
        if data is None:
            table = load_table(reg, name, info.spec)
        else:
            table = load_labelled(info.spec.model_copy(update={"source": str(Path(data).resolve())}), engine=reg.engine)
        X, y = (table.frame, table.y) if all_rows else table.test
        metrics = score_metrics(y, predict_proba(reg.load(info), info.schema, X), n_train=info.metrics.n_train)
    click.echo(f"{name} v{info.version} [{info.status}] {info.estimator}")
    click.echo(metrics.summary())


@ml.command()
@click.argument("name", required=False)
@click.option("--history", is_flag=True, help="Also print promotion decisions (needs NAME).")
@_friendly
def models(name: str | None, history: bool) -> None:
    """List registered model versions with status and held-out metrics."""
    reg = _registry()
    rows = reg.versions(name)
    if not rows:
        click.echo("no models registered" + (f" under {name!r}" if name else ""))
        return
    click.echo(
        f"{'name':<16} {'ver':>4} {'status':<10} {'estimator':<30} {'ROC AUC':>7} {'PR AUC':>7} "
        f"{'Brier':>6} {'rows':>7}  created           note"
    )
    for v in rows:
        m = v.metrics
        click.echo(
            f"{v.name:<16} {v.version:>4} {v.status:<10} {v.estimator:<30} {m.roc_auc:>7.3f} {m.pr_auc:>7.3f} "
            f"{m.brier:>6.3f} {v.n_rows:>7}  {v.created_at:%Y-%m-%d %H:%M}  {v.note or ''}"
        )
    if history and name:
        click.echo("\ndecisions (newest first):")
        for d in reg.decisions(name):
            click.echo(f"  {d['created_at']:%Y-%m-%d %H:%M} {d['kind']:<9} v{d['version']}: {d['reason']}")


@ml.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="promoted by hand", show_default=True)
@_friendly
def promote(name: str, version: int, reason: str) -> None:
    """Make VERSION the champion of NAME (the current champion is retired)."""
    info = _registry().promote(name, version, reason)
    click.echo(f"{name} v{info.version} is now champion")


@ml.command()
@click.argument("name")
@click.option("--reason", default="rollback", show_default=True)
@_friendly
def rollback(name: str, reason: str) -> None:
    """Bring back the previous champion of NAME; the current one is retired."""
    reg = _registry()
    current = reg.get(name)
    info = reg.rollback(name, reason)
    click.echo(f"{name}: v{current.version} retired, v{info.version} is champion again")


@ml.command()
@click.argument("name")
@click.option("--budget", type=float, help="AutoML time budget in seconds (default: settings).")
@click.option("--margin", type=float, help="ROC AUC gain needed to promote (default: settings).")
@click.option("--engine", default="flaml", show_default=True)
@_friendly
def retrain(name: str, budget: float | None, margin: float | None, engine: str) -> None:
    """Train a challenger on the champion's data (plus outcomes); promote it only if it wins."""
    from circuits.settings import get_settings
    from intelligence.ml.progress import Progress
    from intelligence.ml.promotion import retrain as run_retrain

    settings = get_settings()
    budget_s = budget or settings.ml_train_budget_s
    reg = _registry()
    with Progress(f"retraining {name} ({engine})", budget_s), _quiet_warnings():
        result = run_retrain(
            reg,
            name,
            margin=settings.ml_promotion_margin if margin is None else margin,
            engine=engine,
            budget_s=budget_s,
        )
    click.echo(f"challenger v{result.challenger.version}: {result.challenger_metrics.summary()}")
    click.echo(result.reason)
    click.echo(f"champion: v{result.champion.version}")


def main() -> None:  # pragma: no cover - convenience: python -m intelligence.ml.cli
    ml(prog_name="circuit-os ml", args=sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
