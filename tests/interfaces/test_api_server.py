"""End to end through a real uvicorn server on 127.0.0.1: a producer's API key, a CloudEvent over
HTTP, and the run listed by GET /v1/runs within a second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx

from tests.conftest import ROOT
from tests.interfaces.conftest import OTHER, OWN, auth


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_producer_key_event_to_listed_run_within_a_second(server: str) -> None:
    key = _cli("keys", "create", "--tenant", OWN, "--role", "producer", "--name", "web form")
    assert key.startswith("cok_")
    event_id = f"e2e-{uuid.uuid4()}"
    event = {"specversion": "1.0", "id": event_id, "type": "test.sequence", "source": "web", "data": {"n": 2}}
    sent = time.monotonic()
    r = httpx.post(
        f"{server}/v1/events",
        json=event,
        headers={"Authorization": f"Bearer {key}", "content-type": "application/cloudevents+json"},
    )
    assert r.status_code == 202 and r.json()["ids"] == [event_id]
    viewer = auth("viewer")
    while True:
        runs = httpx.get(f"{server}/v1/runs", params={"event": event_id}, headers=viewer).json()["runs"]
        if runs:
            break
        assert time.monotonic() - sent < 1.0, "the run did not appear within a second"
        time.sleep(0.02)
    assert runs[0]["circuit"] == "t-sequence" and runs[0]["tenant"] == OWN
    other = httpx.get(f"{server}/v1/runs", params={"event": event_id}, headers=auth("viewer", OTHER)).json()
    assert other["runs"] == []
    assert httpx.get(f"{server}/v1/runs/{runs[0]['id']}", headers=auth("viewer", OTHER)).status_code == 404

    key_id = key.split("_")[1]
    assert key_id in _cli("keys", "list") and key.split("_", 2)[2] not in _cli("keys", "list")
    _cli("keys", "revoke", key_id)
    r = httpx.post(f"{server}/v1/events", json=event, headers={"X-API-Key": key})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert key not in r.text


def test_openapi_and_health(server: str) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/v1/events", "/v1/runs", "/v1/circuits/{name}", "/v1/webhooks/{source}"} <= set(spec["paths"])
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok", "redis": None, "database": None}
    assert httpx.get(f"{server}/readyz").json()["database"] == "ok"


def test_the_api_serves_prometheus_metrics(server: str) -> None:
    text = httpx.get(f"{server}/metrics", timeout=5).text
    assert "circuit_queue_depth" in text and "circuit_ledger_lag_seconds" in text
