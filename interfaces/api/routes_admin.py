"""API keys, the audit log, and the health checks."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from interfaces.api import schemas
from interfaces.api.auth import caller
from interfaces.api.errors import ERROR_RESPONSES
from service import audit, keys, runtime
from service.access import Principal

router = APIRouter(responses=ERROR_RESPONSES)
health = APIRouter()
Who = Annotated[Principal, Depends(caller)]


@router.get("/v1/keys", response_model=schemas.KeyList, summary="API keys of your tenant (never the secrets)")
def list_keys(who: Who) -> schemas.KeyList:
    return schemas.KeyList(keys=[schemas.KeyInfo.model_validate(k) for k in keys.list_keys(runtime(), who)])


@router.post("/v1/keys", status_code=201, response_model=schemas.KeyCreated, summary="Create an API key")
def create_key(body: schemas.KeyRequest, who: Who) -> schemas.KeyCreated:
    key, info = keys.create(runtime(), who, body.tenant or who.tenant, body.role, body.name)
    return schemas.KeyCreated(key=key, **info)


@router.delete("/v1/keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(key_id: Annotated[str, Path(max_length=40)], who: Who) -> Response:
    keys.revoke(runtime(), who, key_id)
    return Response(status_code=204)


@router.get("/v1/audit", response_model=schemas.AuditLog, summary="Who changed what, newest first")
def get_audit(
    who: Who,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> schemas.AuditLog:
    rows = audit.entries(runtime(), who, limit, before)
    return schemas.AuditLog(entries=[schemas.AuditEntry.model_validate(r) for r in rows])


@health.get("/healthz", response_model=schemas.Health, summary="The process answers")
def healthz() -> schemas.Health:
    return schemas.Health(status="ok")


@health.get(
    "/readyz",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "Redis or the database cannot be reached"}},
    summary="Redis and the database are reachable",
)
def readyz() -> JSONResponse:
    rt = runtime()
    checks: dict[str, str] = {}
    try:
        rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the class says which
        checks["redis"] = f"unreachable ({type(exc).__name__})"
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"unreachable ({type(exc).__name__})"
    ok = all(v == "ok" for v in checks.values())
    body = schemas.Health(status="ok" if ok else "unavailable", **checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
