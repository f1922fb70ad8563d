"""Runs: list and read them from the ledger, retry and cancel them through ``workers.control``."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from circuits.errors import ForbiddenError, NotFoundError
from service import audit
from service.access import Principal, require
from storage import ledger
from workers import control, progress
from workers.runtime import Runtime

RunStateError = control.RunStateError  # retrying a running run, cancelling an ended one (HTTP 409)
STATUSES = ("running", "succeeded", "failed", "cancelled")
MAX_PAGE = 500


def encode_cursor(run: dict[str, Any]) -> str:
    raw = json.dumps([run["started_at"].isoformat(), run["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(started_at, id)`` a cursor points after; NotFoundError-free: a bad one is a ValueError."""
    try:
        at, run_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), str(run_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor this API gave out") from exc


def list_runs(
    rt: Runtime,
    who: Principal,
    *,
    circuit: str | None = None,
    status: str | None = None,
    event_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of runs, newest first, of the caller's tenant; and the cursor of the next page (or None)."""
    require(who, "runs.read")
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: one of {', '.join(STATUSES)}")
    limit = max(1, min(limit, MAX_PAGE))
    rows = ledger.list_runs(
        rt.engine,
        limit=limit + 1,
        status=status,
        circuit=circuit,
        event_id=event_id,
        since=since,
        until=until,
        tenant=who.scope,
        after=decode_cursor(cursor) if cursor else None,
    )
    more = len(rows) > limit and rows[limit - 1]["started_at"] is not None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more else None


def get_run(rt: Runtime, who: Principal, run_id: str) -> dict[str, Any]:
    """One run with its steps; NotFoundError also for another tenant's run (its existence is not told)."""
    require(who, "runs.read")
    run = ledger.get_run(rt.engine, run_id, tenant=who.scope)
    if run is None:
        raise NotFoundError(f"no run {run_id!r} (the ledger lags the run by well under a second)")
    return run


def get_event(rt: Runtime, who: Principal, run_id: str) -> dict[str, Any]:
    """The event that started a run (of the caller's tenant); NotFoundError if either is unknown."""
    run = get_run(rt, who, run_id)
    event = ledger.get_event(rt.engine, run["event_id"]) if run["event_id"] else None
    if event is None or not who.sees(event["tenant"]):
        raise NotFoundError(f"run {run_id!r} has no recorded event")
    return event


def _tenant_of(rt: Runtime, who: Principal, run_id: str) -> str:
    ctx = progress.saved_context(rt.redis, run_id)
    tenant = ctx["run"].get("tenant", "default") if ctx else None
    if ctx is None or not who.owns(tenant):
        raise NotFoundError(f"run {run_id!r} has no saved state (unknown, or older than its retention)")
    return str(tenant)


def retry(rt: Runtime, who: Principal, run_id: str, from_step: str | None = None) -> control.Retried:
    """Resume an ended run from its failed step (or ``from_step``); audited."""
    require(who, "runs.control")
    tenant = _tenant_of(rt, who, run_id)
    rt.refresh_catalog()
    done = control.retry(rt, run_id, from_step)
    audit.record(rt, who, "run.retry", run_id, tenant, {"circuit": done.circuit, "from": from_step})
    return done


def retry_failed(
    rt: Runtime, who: Principal, circuit: str | None, since: datetime, until: datetime | None = None
) -> list[control.Retried]:
    """Bulk retry of the failed runs in a window: a platform operation (every tenant's runs)."""
    require(who, "runs.control")
    if not who.platform:
        raise ForbiddenError("a bulk retry spans tenants; retry runs one by one")
    done = control.retry_failed(rt, rt.engine, circuit, since, until)
    for r in done:
        audit.record(rt, who, "run.retry", r.run_id, None, {"circuit": r.circuit, "bulk": True})
    return done


def cancel(rt: Runtime, who: Principal, run_id: str) -> str:
    """Ask a run to stop at its next step; audited."""
    require(who, "runs.control")
    tenant = _tenant_of(rt, who, run_id)
    state = control.cancel(rt, run_id)
    audit.record(rt, who, "run.cancel", run_id, tenant)
    return state
