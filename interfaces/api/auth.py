"""Who is calling: an API key (``X-API-Key``, or ``Authorization: Bearer cok_...``), a JWT bearer
token, or (only when switched on) nobody. Every authenticated request is rate limited per
key and per tenant in Redis, shared by every API process."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from circuits.errors import UnauthenticatedError
from interfaces.api import tokens
from service import keys, ratelimit, runtime
from service.access import Principal

bearer = HTTPBearer(auto_error=False, description="A JWT (HS256 or RS256) or an API key")
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (cok_...)")


def identify(request: Request, token: str | None, key: str | None) -> Principal:
    rt = runtime()
    settings = rt.settings
    if key:
        return keys.authenticate(rt, key)
    if token:
        return keys.authenticate(rt, token) if keys.looks_like_key(token) else tokens.principal(settings, token)
    if request.headers.get("authorization"):
        raise UnauthenticatedError("Authorization: only the Bearer scheme is accepted")
    if settings.api_allow_anonymous:
        return Principal(subject="anonymous", tenant=settings.api_anonymous_tenant, role=settings.api_anonymous_role)
    raise UnauthenticatedError("no credentials: send Authorization: Bearer <JWT or API key>, or X-API-Key")


def limit(who: Principal) -> None:
    """Spend one request of the caller's and its tenant's rate; RateLimitedError when used up."""
    rt = runtime()
    s = rt.settings
    ratelimit.take(
        rt.redis,
        [
            ratelimit.Bucket(f"who:{who.subject}", s.api_rate_per_key, s.api_rate_burst_s, "requests per key"),
            ratelimit.Bucket(f"tenant:{who.tenant}", s.api_rate_per_tenant, s.api_rate_burst_s, "requests per tenant"),
        ],
    )


def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008 - FastAPI's way
    key: str | None = Depends(api_key),  # noqa: B008
) -> Principal:
    """The dependency of every authenticated route."""
    who = identify(request, credentials.credentials if credentials else None, key)
    limit(who)
    return who
