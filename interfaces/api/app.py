"""The FastAPI application: routes, error answers, the body size limit, start-up checks.

``/`` is the console (``interfaces/console``): a static page on this same API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces import console
from interfaces.api import errors, routes_admin, routes_circuits, routes_events, routes_runs
from service import metrics as service_metrics
from service import runtime

log = logging.getLogger(__name__)
VERSION = "1"


class BodyLimit:
    """Refuse a body over ``max_bytes``: at once by its Content-Length, or as soon as it streams past."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            response = errors.error(
                413 if length.isdigit() else 400,
                "too_large" if length.isdigit() else "malformed",
                f"request body over the limit of {self.max_bytes} bytes (CIRCUIT_API_MAX_BODY_BYTES)"
                if length.isdigit()
                else "Content-Length is not a number",
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise errors.BodyTooLarge()
            return message

        await self.app(scope, limited, send)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


class PlainText:
    """Refuse a path or query parameter holding a control character (NUL cannot reach PostgreSQL)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
            where = "path" if _CONTROL.search(scope["path"]) else "query" if _CONTROL.search(query) else None
            if where is not None:
                problem = errors.Problem(message="holds a control character (such as NUL)", field=where)
                response = errors.error(422, "invalid_request", f"{where}: holds a control character", [problem])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def starting_up(app: FastAPI) -> None:
    """Migrate the database (unless CIRCUIT_AUTO_MIGRATE=false) and say how callers are let in."""
    from storage.migrate import upgrade

    rt = runtime()
    if rt.settings.auto_migrate:
        upgrade(rt.engine)
    s = rt.settings
    if s.api_allow_anonymous:
        log.warning(
            "ANONYMOUS ACCESS IS ON (CIRCUIT_API_ALLOW_ANONYMOUS): requests without credentials act as %s of "
            "tenant %s. Use this for local work only.",
            s.api_anonymous_role,
            s.api_anonymous_tenant,
        )
    ways = ["API keys"]
    if s.api_jwt_secret is not None:
        ways.append("HS256 bearer tokens")
    if s.api_jwt_jwks_file is not None:
        ways.append(f"RS256 bearer tokens (keys from {s.api_jwt_jwks_file})")
    log.info("the API accepts %s", ", ".join(ways))


def create_app(migrate: bool = True) -> FastAPI:
    """The API application; ``migrate=False`` skips the start-up work (tests that did it already)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            starting_up(app)
        yield

    app = FastAPI(
        title="Circuit OS",
        version=VERSION,
        description="Publish events, watch and steer runs, deploy circuits. Every answer is JSON; errors are "
        '{"error": {"code", "message", "problems"}}.',
        lifespan=lifespan,
    )
    app.state.max_body_bytes = runtime().settings.api_max_body_bytes
    errors.install(app)
    for module in (routes_events, routes_runs, routes_circuits, routes_admin):
        app.include_router(module.router)
    app.include_router(routes_admin.health)
    app.add_middleware(BodyLimit, max_bytes=app.state.max_body_bytes)
    app.add_middleware(PlainText)

    app.mount("/console", StaticFiles(directory=console.STATIC), name="console")

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus scrapes the API host too (no auth: bind to a private address)."""
        body, content_type = service_metrics.scrape()
        return Response(body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> Any:
        """The console: a static page that calls this API with the visitor's own credentials."""
        return FileResponse(console.STATIC / "index.html", media_type="text/html")

    return app
