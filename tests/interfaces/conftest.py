"""The API in-process (FastAPI's TestClient) on the session's real Redis, PostgreSQL and worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import applied_env, wait_for

JWT_SECRET = f"jwt-{uuid.uuid4().hex}"
WEBHOOK_SECRET = f"hook-{uuid.uuid4().hex}"
SUFFIX = uuid.uuid4().hex[:6]
OWN, OTHER = f"acme-{SUFFIX}", f"globex-{SUFFIX}"


@pytest.fixture(scope="session")
def api_env(engine_env: dict[str, str]) -> Iterator[dict[str, str]]:
    env = {
        "CIRCUIT_API_JWT_SECRET": JWT_SECRET,
        "CIRCUIT_API_WEBHOOKS": json.dumps(
            {"forms": {"secret": WEBHOOK_SECRET, "type": "test.sequence", "tenant": OWN}}
        ),
        "CIRCUIT_API_KEY_CACHE_S": "0",
    }
    with applied_env(env):
        yield {**engine_env, **env}


@pytest.fixture()
def api(api_env: dict[str, str], ledger: Any) -> Iterator[Any]:
    """A TestClient of the app (the database is migrated by the ledger fixture)."""
    from fastapi.testclient import TestClient

    from interfaces.api import create_app

    with TestClient(create_app(migrate=False), raise_server_exceptions=False) as client:
        yield client


def token(role: str, tenant: str = OWN, sub: str = "tester", **claims: Any) -> str:
    payload = {"sub": sub, "tenant": tenant, "role": role, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def auth(role: str, tenant: str = OWN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, tenant)}"}


def new_id(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4()}"


wait_until = wait_for  # one polling helper for every test package


def ended_run(api: Any, headers: dict[str, str], event_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The run of ``event_id`` once it has ended, read through the API."""

    def get() -> dict[str, Any] | None:
        runs = api.get("/v1/runs", params={"event": event_id}, headers=headers).json()["runs"]
        if runs and runs[0]["status"] in ("succeeded", "failed", "cancelled"):
            return api.get(f"/v1/runs/{runs[0]['id']}", headers=headers).json()  # type: ignore[no-any-return]
        return None

    return wait_until(get, timeout, f"the run of {event_id}")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(api_env: dict[str, str], worker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``circuit-os serve`` as a real process on 127.0.0.1 (a free port), ready when it answers /readyz."""
    from tests.conftest import ROOT
    from workers.embedded import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **api_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"the API did not start: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
