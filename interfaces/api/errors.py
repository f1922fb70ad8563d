"""One JSON shape for every error answer: ``{"error": {"code", "message", ...}}``.

Our named errors map to statuses here and nowhere else. Messages are ours (never a
driver's text that could carry a URL with a password); an unexpected exception is
logged and answered with a generic 500 that tells nothing of the server's insides.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from circuits.errors import (
    CircuitError,
    ConflictError,
    DefinitionError,
    EventError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)
from circuits.loader import CircuitFileErrors
from service.runs import RunStateError

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """One problem: where (``file``, ``line``, or ``field``) and what."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    problems: list[Problem] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class BodyTooLarge(Exception):
    """The request body passed ``CIRCUIT_API_MAX_BODY_BYTES``."""


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Malformed request (body not JSON, bad header)"),
        (401, "No valid credentials"),
        (403, "The role or tenant does not allow this"),
        (404, "Not found (or of another tenant)"),
        (409, "Conflict with the current state"),
        (413, "Body or batch too large"),
        (415, "Unsupported content type"),
        (422, "Invalid input; problems name the field or line"),
        (429, "Rate limit reached; see Retry-After"),
    )
}


def error(
    status: int,
    code: str,
    message: str,
    problems: list[Problem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, problems=problems or []))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _definition_problems(exc: DefinitionError) -> list[Problem]:
    errors = exc.errors if isinstance(exc, CircuitFileErrors) else [exc]
    return [Problem(message=e.message, file=e.file, line=e.line) for e in errors]


def circuit_error(exc: CircuitError) -> JSONResponse:
    if isinstance(exc, UnauthenticatedError):
        return error(401, "unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, ForbiddenError):
        return error(403, "forbidden", str(exc))
    if isinstance(exc, NotFoundError):
        return error(404, "not_found", str(exc))
    if isinstance(exc, ConflictError | RunStateError):
        return error(409, "conflict", str(exc))
    if isinstance(exc, RateLimitedError):
        return error(429, "rate_limited", str(exc), headers={"Retry-After": str(int(exc.retry_after_s or 1))})
    if isinstance(exc, DefinitionError):
        problems = _definition_problems(exc)
        return error(422, "invalid_circuit", f"{len(problems)} problem(s) in the circuit", problems)
    if isinstance(exc, EventError):
        return error(422, "invalid_event", str(exc), [Problem(message=exc.message, field=exc.field)])
    log.error("unmapped error %s: %s", type(exc).__name__, exc)
    return error(500, "internal", "the server could not do this; its log says why")


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into :class:`ErrorBody` answers."""

    @app.exception_handler(CircuitError)
    async def _ours(_: Request, exc: CircuitError) -> JSONResponse:
        return circuit_error(exc)

    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError) -> JSONResponse:
        return error(422, "invalid_request", str(exc)[:500])

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, _: BodyTooLarge) -> JSONResponse:
        limit = request.app.state.max_body_bytes
        return error(413, "too_large", f"request body over the limit of {limit} bytes (CIRCUIT_API_MAX_BODY_BYTES)")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(message=str(e.get("msg", "invalid")), field=".".join(str(p) for p in e.get("loc", ())))
            for e in exc.errors()
        ]
        first = problems[0] if problems else Problem(message="invalid request")
        return error(422, "invalid_request", f"{first.field}: {first.message}", problems)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        down = _unreachable(exc)
        if down:
            return error(503, "unavailable", down, headers={"Retry-After": "5"})
        log.exception("unexpected error")
        return error(500, "internal", "the server could not do this; its log says why")


def _unreachable(exc: BaseException) -> str | None:
    """'Redis' or 'the database' when ``exc`` means one cannot be reached (without its URL)."""
    import redis.exceptions
    import sqlalchemy.exc

    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return "cannot reach Redis; try again shortly"
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return "cannot reach the database; try again shortly"
    return None
