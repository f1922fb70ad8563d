"""``circuit-os demo``: the main job end to end with nothing set up by hand.

Starts Redis (unless CIRCUIT_REDIS_URL is set) and a worker, uses SQLite, publishes
lead events built from the shipped leads data, waits for every run, prints a
summary and stops what it started. Exit status 1 if any run failed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from circuits.settings import PACKAGE_ROOT, get_settings
from workers.embedded import CeleryProcess, EmbeddedRedis

LEADS_CSV = PACKAGE_ROOT / "data" / "x_education_leads" / "Leads.csv"


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def lead_events(n: int, path: Path = LEADS_CSV) -> Iterator[dict[str, Any]]:
    """``lead.created`` envelopes from the first ``n`` rows of the leads data."""
    with path.open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i >= n:
                return
            clean = {k: (None if v in ("", "Select") else v) for k, v in row.items()}
            record = {k: v for k, v in row.items() if k not in ("Converted", "Prospect ID", "Lead Number")}
            yield {
                "type": "lead.created",
                "source": "circuit-os/demo",
                "id": f"demo-{uuid.uuid4()}",
                "subject": clean["Prospect ID"],
                "data": {
                    "lead_number": clean["Lead Number"],
                    "origin": clean["Lead Origin"],
                    "lead_source": clean["Lead Source"],
                    "visits": _num(row["TotalVisits"]),
                    "time_on_site_s": _num(row["Total Time Spent on Website"]),
                    "last_activity": clean["Last Activity"],
                    "country": clean["Country"],
                    "city": clean["City"],
                    "occupation": clean["What is your current occupation"],
                    "record": record,
                },
            }


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    if os.environ.get("CIRCUIT_REDIS_URL"):
        yield os.environ["CIRCUIT_REDIS_URL"]
        return
    with EmbeddedRedis() as url:
        click.echo(f"started embedded Redis at {url}")
        yield url


def _wait_runs(engine: sa.Engine, event_ids: list[str], timeout: float) -> tuple[int, dict[str, int]]:
    """Wait until every event is recorded and all its runs ended; return (runs expected, by status)."""
    from storage.ledger import EventRow, RunRow

    deadline = time.monotonic() + timeout
    expected, counts = 0, {}
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            recorded = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(EventRow.runs_started), 0)).where(
                    EventRow.id.in_(event_ids)
                )
            ).one()
            counts = dict(
                conn.execute(
                    sa.select(RunRow.status, sa.func.count())
                    .where(RunRow.event_id.in_(event_ids))
                    .group_by(RunRow.status)
                ).all()
            )
        expected = int(recorded[1])
        ended = counts.get("succeeded", 0) + counts.get("failed", 0)
        if recorded[0] == len(event_ids) and ended == expected:
            break
        time.sleep(0.25)
    return expected, counts


def _step_timings(engine: sa.Engine, event_ids: list[str]) -> list[tuple[str, int, float, float]]:
    from storage.ledger import RunRow, StepRow

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(StepRow.step_id, StepRow.duration_ms)
            .join(RunRow, RunRow.id == StepRow.run_id)
            .where(RunRow.event_id.in_(event_ids))
        ).all()
    by_step: dict[str, list[float]] = {}
    for step_id, ms in rows:
        by_step.setdefault(step_id, []).append(ms or 0.0)
    out = []
    for step_id, values in sorted(by_step.items()):
        values.sort()
        out.append((step_id, len(values), statistics.median(values), values[int(0.95 * (len(values) - 1))]))
    return out


def ensure_lead_model(budget_s: float) -> None:
    """Train and register the lead-scoring model the circuit calls, unless a champion exists."""
    from circuits.actions import ActionContext
    from workers.runtime import runtime

    rt = runtime()
    ctx = ActionContext(run_id="demo", step_id="train", circuit="demo", resources=rt.resources)
    if _has_champion(ctx):
        click.echo("lead_score model: using the registered champion")
        return
    click.echo(f"lead_score model: training with AutoML ({budget_s:.0f}s budget) on the X Education leads...")
    out = rt.registry.get("ml.train").run(ctx, {"name": "lead_score", "budget_s": budget_s})  # the shipped example
    click.echo(
        f"lead_score v{out['version']} {out['status']}: {out['estimator']}, held-out ROC AUC "
        f"{out['metrics'].get('roc_auc', float('nan')):.3f}"
    )


def _has_champion(ctx: Any) -> bool:
    from intelligence.ml.actions import registry

    return registry(ctx).champion("lead_score") is not None


def run_demo(n_events: int = 200, concurrency: int = 2, train_budget_s: float = 10.0) -> int:
    home = Path(os.environ.get("CIRCUIT_HOME", ".circuit-os")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    with _redis() as redis_url:
        env = {**os.environ, "CIRCUIT_REDIS_URL": redis_url, "CIRCUIT_HOME": str(home)}
        env.setdefault("CIRCUIT_DATABASE_URL", f"sqlite:///{home / 'circuit_os.db'}")
        os.environ.update({k: env[k] for k in ("CIRCUIT_REDIS_URL", "CIRCUIT_HOME", "CIRCUIT_DATABASE_URL")})
        from workers.runtime import reset_runtime, runtime

        reset_runtime()
        settings = get_settings()
        from storage.migrate import upgrade
        from workers.app import create_app
        from workers.publish import publish_envelope

        app = create_app()
        upgrade(runtime().engine)
        click.echo(f"database {settings.database_url}; circuits from {settings.circuits}")
        ensure_lead_model(train_budget_s)
        args = [
            "worker",
            "-c",
            str(concurrency),
            "--loglevel",
            "INFO",
            "-n",
            f"demo-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        with CeleryProcess(args, env, home / "demo-worker.log") as worker:
            worker.wait_ready(app)
            t0 = time.perf_counter()
            ids = [publish_envelope(e, origin="demo").id for e in lead_events(n_events)]
            click.echo(f"published {len(ids)} lead.created events in {time.perf_counter() - t0:.2f}s")
            expected, counts = _wait_runs(runtime().engine, ids, timeout=60 + n_events * 0.5)
            elapsed = time.perf_counter() - t0
        timings = _step_timings(runtime().engine, ids)
        reset_runtime()
    ended = counts.get("succeeded", 0) + counts.get("failed", 0)
    click.echo(f"\nevents: {len(ids)}   runs started: {expected}   (events not matching the trigger start none)")
    click.echo("runs by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    click.echo(f"all runs ended in {elapsed:.2f}s ({ended / elapsed:.0f} runs/s)\n")
    click.echo(f"{'STEP':<16}{'N':>6}{'P50 MS':>10}{'P95 MS':>10}")
    for step_id, n, p50, p95 in timings:
        click.echo(f"{step_id:<16}{n:>6}{p50:>10.2f}{p95:>10.2f}")
    click.echo(f"\nworker log: {home / 'demo-worker.log'}")
    if counts.get("failed") or ended != expected or expected == 0:
        click.secho("demo FAILED: some runs failed or did not finish", fg="red")
        return 1
    click.secho("demo OK", fg="green")
    return 0
