"""The state of a running system, for ``circuit-os status`` and the API: queues, workers, throughput, lags.

* **queues**: depth and the age of the oldest waiting message, from Redis (:mod:`workers.backlog`);
  a message that does not say when it was sent makes the age unknown, and says so;
* **workers**: each worker's queues, pool size and tasks running now (``celery inspect``, with a
  short timeout: a worker that does not answer in time is not listed);
* **throughput**: runs started and ended per second over the last ``window_s``, from the ledger;
* **lags**: the ledger's (the oldest record not yet in SQL) and ingest's (the oldest event waiting).

It spans every tenant, so only a platform principal may read it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from circuits.errors import ForbiddenError
from service.access import Principal
from storage.ledger import RunRow
from workers import backlog
from workers.backlog import QueueBacklog
from workers.runtime import Runtime


@dataclass
class WorkerStatus:
    name: str
    queues: list[str]
    concurrency: int | None
    active: int
    load: float | None  # tasks running / pool processes
    processed: int | None  # tasks received since the worker started


@dataclass
class SystemStatus:
    at: float
    queues: list[QueueBacklog]
    workers: list[WorkerStatus] = field(default_factory=list)
    runs_started_per_s: float = 0.0
    runs_ended_per_s: float = 0.0
    window_s: float = 60.0
    ledger_lag_s: float = 0.0
    ledger_backlog: int = 0
    ingest_lag_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _inspect(app: Any, timeout_s: float) -> dict[str, Any]:
    """Three inspect broadcasts at once (each waits out the timeout), each on its own connection."""

    def ask(method: str) -> dict[str, Any]:
        with app.connection_for_write() as conn:
            return getattr(app.control.inspect(timeout=timeout_s, connection=conn), method)() or {}

    with ThreadPoolExecutor(3) as pool:
        found = dict(
            zip(("queues", "stats", "active"), pool.map(ask, ("active_queues", "stats", "active")), strict=True)
        )
    return found


def workers(app: Any, timeout_s: float = 1.0) -> list[WorkerStatus]:
    found = _inspect(app, timeout_s)
    out = []
    for name in sorted(set(found["queues"]) | set(found["stats"])):
        stats = found["stats"].get(name) or {}
        concurrency = (stats.get("pool") or {}).get("max-concurrency")
        active = len(found["active"].get(name) or [])
        total = stats.get("total")
        out.append(
            WorkerStatus(
                name=name,
                queues=sorted(q["name"] for q in found["queues"].get(name) or []),
                concurrency=concurrency,
                active=active,
                load=round(active / concurrency, 3) if concurrency else None,
                processed=sum(total.values()) if isinstance(total, dict) else None,
            )
        )
    return out


def throughput(engine: Any, window_s: float) -> tuple[float, float]:
    """Runs started and ended per second over the last ``window_s`` seconds."""
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    q = sa.select(
        sa.func.count().filter(RunRow.started_at >= since), sa.func.count().filter(RunRow.ended_at >= since)
    ).where(sa.or_(RunRow.started_at >= since, RunRow.ended_at >= since))
    with engine.connect() as conn:
        started, ended = conn.execute(q).one()
    return started / window_s, ended / window_s


def read(rt: Runtime, who: Principal, *, window_s: float = 60.0, timeout_s: float = 1.0) -> SystemStatus:
    """Everything above, now."""
    if not who.platform:
        raise ForbiddenError("the system status spans every tenant: platform principals only")
    from workers.app import app

    b = backlog.read(rt.redis, rt.settings.event_stream)
    started, ended = throughput(rt.engine, window_s)
    return SystemStatus(
        at=b.at,
        queues=b.queues,
        workers=workers(app, timeout_s),
        runs_started_per_s=round(started, 3),
        runs_ended_per_s=round(ended, 3),
        window_s=window_s,
        ledger_lag_s=round(b.ledger_lag_s, 3),
        ledger_backlog=b.ledger_entries,
        ingest_lag_s=round(b.ingest_lag_s, 3),
    )


def _age(q: QueueBacklog) -> str:
    if q.depth == 0:
        return "-"
    if q.oldest_age_s is None:
        return "unknown (no sent time)"
    return f"{q.oldest_age_s:.1f}s" + (" (some unknown)" if q.age_unknown else "")


def format_text(s: SystemStatus) -> str:
    """The status as tables, for a person."""
    lines = [f"{'QUEUE':<10}{'DEPTH':>8}  OLDEST"]
    lines += [f"{q.name:<10}{q.depth:>8}  {_age(q)}" for q in s.queues]
    lines.append("")
    if s.workers:
        width = max(len(w.name) for w in s.workers) + 2
        lines.append(f"{'WORKER':<{width}}{'ACTIVE':>7}{'POOL':>6}{'LOAD':>7}{'DONE':>9}  QUEUES")
        for w in s.workers:
            load = f"{w.load:.0%}" if w.load is not None else "?"
            lines.append(
                f"{w.name:<{width}}{w.active:>7}{w.concurrency or '?':>6}{load:>7}{w.processed or 0:>9}  "
                + ",".join(w.queues)
            )
    else:
        lines.append("no worker answered")
    lines.append("")
    lines.append(f"runs/s (last {s.window_s:.0f}s): {s.runs_started_per_s:.2f} started, {s.runs_ended_per_s:.2f} ended")
    lines.append(f"ledger lag: {s.ledger_lag_s:.1f}s ({s.ledger_backlog} records not yet in SQL)")
    lines.append(f"ingest lag: {s.ingest_lag_s:.1f}s")
    return "\n".join(lines)
