"""The run ledger: events, rejected events, runs and steps, written in batches.

Workers do not write here on the hot path. They append small records to a Redis
stream; :func:`apply_batch` turns a batch of those records into a few
``INSERT .. ON CONFLICT`` statements in one transaction. Every write is an
upsert that only moves state forward, so batches may be replayed (a writer that
died before acknowledging) and records may arrive out of order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base


class EventRow(Base):
    __tablename__ = "circuit_events"
    id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(100), default="default")
    type: Mapped[str] = mapped_column(sa.String(200), index=True)
    source: Mapped[str] = mapped_column(sa.String(500))
    subject: Mapped[str | None] = mapped_column(sa.String(500))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    time: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    data: Mapped[Any] = mapped_column(sa.JSON)
    runs_started: Mapped[int] = mapped_column(sa.Integer, default=0)


class RejectedEventRow(Base):
    """Dead letter: what was rejected and why, so nothing is silently lost."""

    __tablename__ = "circuit_rejected_events"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    origin: Mapped[str] = mapped_column(sa.String(50))
    field: Mapped[str | None] = mapped_column(sa.String(200))
    error: Mapped[str] = mapped_column(sa.Text)
    raw: Mapped[str] = mapped_column(sa.Text)
    tenant: Mapped[str | None] = mapped_column(sa.String(100))  # when the raw text names one


class RunRow(Base):
    __tablename__ = "circuit_runs"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    circuit: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    circuit_version: Mapped[str | None] = mapped_column(sa.String(40))
    event_id: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    event_type: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(sa.Text)
    parent_run_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    tenant: Mapped[str | None] = mapped_column(sa.String(100), index=True)


class StepRow(Base):
    __tablename__ = "circuit_steps"
    run_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    step_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    action: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=1)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    duration_ms: Mapped[float | None] = mapped_column(sa.Float)
    output: Mapped[Any] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), UTC)


def _insert(engine: Engine, table: sa.Table) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def bounded(value: Any, limit: int, text: str | None = None) -> Any:
    """``value`` if its JSON (``text``, when already made) fits in ``limit`` bytes, else a marked preview."""
    text = json.dumps(value, default=str) if text is None else text
    if len(text) <= limit:
        return value
    return {"_truncated": True, "bytes": len(text), "preview": text[: max(0, limit - 100)]}


def apply_batch(engine: Engine, records: Sequence[dict[str, Any]]) -> None:
    """Write one batch of ledger records (dicts with a ``k`` kind) in one transaction."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_kind.setdefault(rec["k"], []).append(rec)
    with engine.begin() as conn:
        if events := by_kind.get("event"):
            _events(conn, engine, events)
        if rejected := by_kind.get("rejected"):
            conn.execute(
                sa.insert(RejectedEventRow.__table__),
                [
                    {
                        "received_at": _ts(r["at"]),
                        "origin": r.get("origin", "?"),
                        "field": r.get("field"),
                        "error": r["error"],
                        "raw": r["raw"],
                        "tenant": r.get("tenant") or _raw_tenant(r["raw"]),
                    }
                    for r in rejected
                ],
            )
        if runs := by_kind.get("run"):
            _runs(conn, engine, runs)
        if steps := by_kind.get("step"):
            _steps(conn, engine, steps)
        if ends := by_kind.get("run_end"):
            _run_ends(conn, engine, ends)


def _raw_tenant(raw: str) -> str | None:
    """The tenant a dead letter's raw text names, if it is a JSON object naming a plausible one."""
    try:
        value = json.loads(raw).get("tenant", "default")
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 100 else None


def _events(conn: sa.Connection, engine: Engine, events: list[dict[str, Any]]) -> None:
    rows = {}
    for e in events:
        rows[e["id"]] = {
            "id": e["id"],
            "tenant": e["tenant"],
            "type": e["type"],
            "source": e["source"],
            "subject": e.get("subject"),
            "idempotency_key": e.get("idempotencykey"),
            "time": _ts(e["time_ts"]),
            "received_at": _ts(e["at"]),
            "data": e.get("data"),
            "runs_started": e.get("runs", 0),
        }
    stmt = _insert(engine, EventRow.__table__)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]), list(rows.values()))


def _runs(conn: sa.Connection, engine: Engine, runs: list[dict[str, Any]]) -> None:
    rows = {
        r["run_id"]: {
            "id": r["run_id"],
            "circuit": r["circuit"],
            "circuit_version": r["version"],
            "event_id": r["event_id"],
            "event_type": r.get("event_type"),
            "status": "running",
            "started_at": _ts(r["at"]),
            "ended_at": None,
            "error": None,
            "parent_run_id": r.get("parent"),
            "tenant": r.get("tenant"),
        }
        for r in runs
    }
    stmt = _insert(engine, RunRow.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            c: stmt.excluded[c]
            for c in ("circuit", "circuit_version", "event_id", "event_type", "started_at", "parent_run_id", "tenant")
        },
    )
    conn.execute(stmt, list(rows.values()))


def _steps(conn: sa.Connection, engine: Engine, steps: list[dict[str, Any]]) -> None:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for s in steps:
        key = (s["run_id"], s["step_id"])
        prev = rows.get(key)
        if prev is None or (s.get("started") or 0, s.get("ended") or 0) >= (prev["_order"]):
            started, ended = _ts(s.get("started")), _ts(s.get("ended"))
            rows[key] = {
                "run_id": s["run_id"],
                "step_id": s["step_id"],
                "action": s.get("action"),
                "status": s["status"],
                "attempts": s["attempts"],
                "started_at": started,
                "ended_at": ended,
                "duration_ms": s.get("ms"),
                "output": s.get("output"),
                "error": s.get("error"),
                "_order": (s.get("started") or 0, s.get("ended") or 0),
            }
    for row in rows.values():
        row.pop("_order")
    table = StepRow.__table__
    stmt = _insert(engine, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "step_id"],
        set_={
            c: stmt.excluded[c]
            for c in ("action", "status", "attempts", "started_at", "ended_at", "duration_ms", "output", "error")
        },
        # a later execution wins; records of one step may arrive out of order, and a late "running"
        # record (no ended_at) never overwrites the end of the same execution
        where=sa.or_(
            table.c.started_at.is_(None),
            table.c.started_at < stmt.excluded.started_at,
            sa.and_(
                table.c.started_at == stmt.excluded.started_at,
                sa.or_(table.c.ended_at.is_(None), stmt.excluded.ended_at.is_not(None)),
            ),
        ),
    )
    conn.execute(stmt, list(rows.values()))


#: End states; a later one never overwrites ``failed`` unless the run was reopened (retried) in between.
TERMINAL = ("succeeded", "failed", "cancelled")


def _run_ends(conn: sa.Connection, engine: Engine, ends: list[dict[str, Any]]) -> None:
    """Fold each run's end records in arrival order: a failure wins over a success or a cancel
    (a parallel branch failed), and a reopen (``status: running``, from a retry) starts afresh."""
    rows: dict[str, dict[str, Any]] = {}
    reopened: set[str] = set()
    for e in ends:
        run_id, status = e["run_id"], e["status"]
        prev = rows.get(run_id)
        if status == "running":
            reopened.add(run_id)
            rows[run_id] = {"id": run_id, "status": "running", "ended_at": None, "error": None}
        elif prev is None or prev["status"] != "failed":  # the first failure stays
            rows[run_id] = {"id": run_id, "status": status, "ended_at": _ts(e["at"]), "error": e.get("error")}
    table = RunRow.__table__
    for group, where in (
        ([r for k, r in rows.items() if k in reopened], None),
        ([r for k, r in rows.items() if k not in reopened], table.c.status != "failed"),
    ):
        if not group:
            continue
        stmt = _insert(engine, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"status": stmt.excluded.status, "ended_at": stmt.excluded.ended_at, "error": stmt.excluded.error},
            where=where,
        )
        conn.execute(stmt, group)


# --- reading ------------------------------------------------------------------------------


def list_runs(
    engine: Engine,
    *,
    limit: int = 20,
    status: str | None = None,
    circuit: str | None = None,
    event_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[dict[str, Any]]:
    """Runs newest first. ``tenant`` scopes them (None: every tenant); ``after`` is the
    ``(started_at, id)`` of the last run of the previous page (keyset paging)."""
    q = sa.select(*RunRow.__table__.c).order_by(RunRow.started_at.desc().nulls_last(), RunRow.id.desc()).limit(limit)
    if tenant is not None:
        q = q.where(RunRow.tenant == tenant)
    if after is not None:
        at, run_id = after
        q = q.where(sa.or_(RunRow.started_at < at, sa.and_(RunRow.started_at == at, RunRow.id < run_id)))
    if since:
        q = q.where(RunRow.started_at >= since)
    if until:
        q = q.where(RunRow.started_at < until)
    if status:
        q = q.where(RunRow.status == status)
    if circuit:
        q = q.where(RunRow.circuit == circuit)
    if event_id:
        q = q.where(RunRow.event_id == event_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).fetchall()]


def get_run(engine: Engine, run_id: str, tenant: str | None = None) -> dict[str, Any] | None:
    """One run with its steps and children; None if unknown (or of another tenant than ``tenant``)."""
    q = sa.select(*RunRow.__table__.c).where(RunRow.id == run_id)
    if tenant is not None:
        q = q.where(RunRow.tenant == tenant)
    with engine.connect() as conn:
        run = conn.execute(q).first()
        if run is None:
            return None
        steps = conn.execute(
            sa.select(*StepRow.__table__.c)
            .where(StepRow.run_id == run_id)
            .order_by(StepRow.started_at, StepRow.step_id)
        ).fetchall()
        children = conn.execute(sa.select(RunRow.id).where(RunRow.parent_run_id == run_id)).scalars().all()
    out = dict(run._mapping)
    out["steps"] = [dict(s._mapping) for s in steps]
    out["children"] = list(children)
    return out


def get_event(engine: Engine, event_id: str) -> dict[str, Any] | None:
    """One recorded event; None if unknown (callers scope it: see service.runs.get_event)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(*EventRow.__table__.c).where(EventRow.id == event_id)).first()
    return dict(row._mapping) if row is not None else None


def rejected_events(
    engine: Engine, limit: int = 50, tenant: str | None = None, before_id: int | None = None
) -> list[dict[str, Any]]:
    """Dead letters newest first; ``tenant`` scopes them (None: all), ``before_id`` pages on."""
    q = sa.select(*RejectedEventRow.__table__.c).order_by(RejectedEventRow.id.desc()).limit(limit)
    if tenant is not None:
        q = q.where(RejectedEventRow.tenant == tenant)
    if before_id is not None:
        q = q.where(RejectedEventRow.id < before_id)
    with engine.connect() as conn:
        rows = conn.execute(q).fetchall()
    return [dict(r._mapping) for r in rows]
