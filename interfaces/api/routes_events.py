"""``POST /v1/events`` (CloudEvents HTTP binding), ``POST /v1/webhooks/{source}``, ``GET /v1/events/rejected``."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from circuits.errors import EventError, NotFoundError, UnauthenticatedError
from integrations.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from interfaces.api import cloudevents, schemas
from interfaces.api.auth import caller
from interfaces.api.errors import ERROR_RESPONSES, Problem, error
from service import events, runtime
from service.access import Principal

router = APIRouter(responses=ERROR_RESPONSES)

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "source"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string"},
        "source": {"type": "string"},
        "type": {"type": "string", "example": "lead.created"},
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string"},
        "datacontenttype": {"type": "string", "enum": ["application/json"]},
        "data": {},
        "tenant": {"type": "string"},
        "idempotencykey": {"type": "string"},
    },
}
_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "description": "One event (structured mode), an array (batch mode), or the data with ce-* headers "
        "(binary mode: ce-type, ce-source, ce-id, ce-subject, ce-tenant, ce-idempotencykey ...).",
        "content": {
            cloudevents.STRUCTURED: {"schema": _EVENT_SCHEMA},
            cloudevents.BATCH: {"schema": {"type": "array", "items": _EVENT_SCHEMA}},
            cloudevents.JSON: {"schema": {"oneOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA}]}},
        },
    }
}


def _accepted(out: events.Published, batch: bool) -> JSONResponse:
    rejected = [Problem(message=r.message, field=f"[{r.index}].{r.field}" if batch else r.field) for r in out.rejected]
    if not batch and rejected:
        return error(422, "invalid_event", f"{rejected[0].field}: {rejected[0].message}", rejected)
    body = schemas.EventsAccepted(ids=out.ids, rejected=rejected)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=202)


@router.post(
    "/v1/events",
    status_code=202,
    response_model=schemas.EventsAccepted,
    openapi_extra=_EVENTS_BODY,
    summary="Publish events (CloudEvents HTTP binding)",
)
async def post_events(request: Request, who: Annotated[Principal, Depends(caller)]) -> JSONResponse:
    body = await request.body()
    try:
        found, batch = cloudevents.envelopes(request.headers, body)
    except cloudevents.Unsupported as exc:
        return error(415, "unsupported_media_type", str(exc))
    except cloudevents.NotJson as exc:
        return error(400, "malformed", str(exc))
    limit = runtime().settings.api_max_batch
    if len(found) > limit:
        return error(413, "too_large", f"a batch of {len(found)} events, over CIRCUIT_API_MAX_BATCH={limit}")
    if not found:
        raise EventError("a batch must hold at least one event", field="(batch)")
    out = await run_in_threadpool(events.publish, runtime(), who, found, "api")
    return _accepted(out, batch)


@router.get("/v1/events/rejected", response_model=schemas.DeadLetters, summary="Dead letters")
def get_rejected(
    who: Annotated[Principal, Depends(caller)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Page on: the last id seen")] = None,
) -> schemas.DeadLetters:
    rows = events.rejected(runtime(), who, limit, before)
    return schemas.DeadLetters(rejected=[schemas.DeadLetter.model_validate(r) for r in rows])


@router.post(
    "/v1/webhooks/{source}",
    status_code=202,
    response_model=schemas.EventsAccepted,
    summary="Receive a signed third-party webhook as an event",
    openapi_extra={"requestBody": {"required": True, "content": {cloudevents.JSON: {"schema": {}}}}},
)
async def post_webhook(source: str, request: Request) -> JSONResponse:
    """Checks ``X-Circuit-Signature`` (``sha256=`` HMAC of ``"<X-Circuit-Timestamp>.<body>"``) with the
    source's secret, then publishes the body as the data of an event of the source's type."""
    rt = runtime()
    config = rt.settings.api_webhooks.get(source)
    if config is None or "secret" not in config or "type" not in config:
        raise NotFoundError(f"no webhook receiver {source[:100]!r}")
    body = await request.body()
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    secret = config["secret"].get_secret_value()
    if not verify_signature(secret, stamp, body, signature, tolerance_s=rt.settings.api_webhook_tolerance_s):
        raise UnauthenticatedError(f"webhook {source}: the signature does not match, or its timestamp is stale")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return error(400, "malformed", "the body is not JSON")
    tenant = config["tenant"].get_secret_value() if "tenant" in config else "default"
    key = request.headers.get("idempotency-key")
    envelope: dict[str, Any] = {
        "type": config["type"].get_secret_value(),
        "source": f"webhook/{source}",
        "tenant": tenant,
        "id": hashlib.sha256(f"{source}\x00{stamp}\x00".encode() + body).hexdigest()[:40],
        "data": data,
    }
    if key:
        envelope["idempotencykey"] = key[:200]
    who = Principal(subject=f"webhook:{source}", tenant=tenant, role="producer")
    out = await run_in_threadpool(events.publish, rt, who, [envelope], "webhook")
    return _accepted(out, False)
