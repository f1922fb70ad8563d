"""``/v1/runs``: list (filters, cursor paging), one run with its steps, retry, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from interfaces.api import schemas
from interfaces.api.auth import caller
from interfaces.api.errors import ERROR_RESPONSES
from service import runs, runtime
from service.access import Principal

router = APIRouter(responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(caller)]


@router.get("/v1/runs", response_model=schemas.RunPage, summary="Runs, newest first")
def list_runs(
    who: Who,
    circuit: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(pattern="^(running|succeeded|failed|cancelled)$")] = None,
    event: Annotated[str | None, Query(max_length=200, description="The id of the event that started it")] = None,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Started before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=runs.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> schemas.RunPage:
    rows, nxt = runs.list_runs(
        runtime(),
        who,
        circuit=circuit,
        status=status,
        event_id=event,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return schemas.RunPage(runs=[schemas.RunSummary.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/v1/runs/{run_id}", response_model=schemas.RunDetail, summary="One run with its steps")
def get_run(run_id: str, who: Who) -> schemas.RunDetail:
    return schemas.RunDetail.model_validate(runs.get_run(runtime(), who, run_id))


@router.get("/v1/runs/{run_id}/event", response_model=schemas.RunEvent, summary="The event that started a run")
def get_run_event(run_id: str, who: Who) -> schemas.RunEvent:
    return schemas.RunEvent.model_validate(runs.get_event(runtime(), who, run_id))


@router.post("/v1/runs/{run_id}/retry", response_model=schemas.Retried, summary="Resume an ended run")
def retry_run(run_id: str, who: Who, body: Annotated[schemas.RetryRequest | None, Body()] = None) -> schemas.Retried:
    done = runs.retry(runtime(), who, run_id, body.from_step if body else None)
    return schemas.Retried(run_id=done.run_id, circuit=done.circuit, forgotten=done.forgotten)


@router.post("/v1/runs/{run_id}/cancel", response_model=schemas.Cancelled, summary="Stop a run at its next step")
def cancel_run(run_id: str, who: Who) -> schemas.Cancelled:
    return schemas.Cancelled(run_id=run_id, state=runs.cancel(runtime(), who, run_id))
