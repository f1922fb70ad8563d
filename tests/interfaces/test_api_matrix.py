"""Authorization matrix: every role x every endpoint x own and other tenant, every cell asserted.

The resources (a run, a circuit, a key, audit entries) belong to tenant OWN. A caller of
OWN with the right role gets the answer; with the wrong role 403; a caller of OTHER with
the right role never sees or touches OWN's things (404, 409 or a list without them).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from service.access import PERMISSIONS, ROLES
from tests.interfaces.conftest import JWT_SECRET, OTHER, OWN, auth, ended_run, new_id

CIRCUIT = (
    "name: {name}\ntrigger: {{event: test.matrix{tag}}}\nsteps:\n  - {{id: a, action: core.set, with: {{x: 1}}}}\n"
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    permission: str
    own: int  # the answer to an allowed caller of OWN
    other: int  # the answer to an allowed caller of OTHER
    body: str | None = None  # a key of the fixture's bodies
    marker: str | None = None  # a list answer shows this to OWN and hides it from OTHER


TABLE = [
    Endpoint("publish", "POST", "/v1/events", "events.publish", 202, 403, body="event"),
    Endpoint("rejected", "GET", "/v1/events/rejected", "events.rejected", 200, 200, marker="dead"),
    Endpoint("runs", "GET", "/v1/runs?event={event}", "runs.read", 200, 200, marker="run"),
    Endpoint("run", "GET", "/v1/runs/{run}", "runs.read", 200, 404),
    Endpoint("retry", "POST", "/v1/runs/{run}/retry", "runs.control", 409, 404),  # it succeeded: nothing to retry
    Endpoint("cancel", "POST", "/v1/runs/{run}/cancel", "runs.control", 409, 404),  # it ended already
    Endpoint("run event", "GET", "/v1/runs/{run}/event", "runs.read", 200, 404),
    Endpoint("circuits", "GET", "/v1/circuits", "circuits.read", 200, 200, marker="circuit"),
    Endpoint("circuit", "GET", "/v1/circuits/{circuit}", "circuits.read", 200, 404),
    Endpoint("graph", "GET", "/v1/circuits/{circuit}/graph", "circuits.read", 200, 404),
    Endpoint("validate", "POST", "/v1/circuits/validate", "circuits.write", 200, 200, body="text"),
    Endpoint("deploy", "PUT", "/v1/circuits/{circuit}", "circuits.write", 201, 409, body="text"),
    Endpoint("enable", "POST", "/v1/circuits/{circuit}/enable", "circuits.write", 200, 404),
    Endpoint("disable", "POST", "/v1/circuits/{circuit}/disable", "circuits.write", 200, 404),
    Endpoint("keys", "GET", "/v1/keys", "keys.manage", 200, 200, marker="key"),
    Endpoint("key create", "POST", "/v1/keys", "keys.manage", 201, 403, body="key"),
    Endpoint("key revoke", "DELETE", "/v1/keys/{key}", "keys.manage", 204, 404),
    Endpoint("audit", "GET", "/v1/audit", "audit.read", 200, 200, marker="audit"),
]
CELLS = [(e, role, side) for e in TABLE for role in ROLES for side in ("own", "other")]


def test_the_table_covers_every_route(api: Any) -> None:
    routes = {(m, p) for p, ops in api.get("/openapi.json").json()["paths"].items() for m in ops}
    public = {("post", "/v1/webhooks/{source}"), ("get", "/healthz"), ("get", "/readyz")}
    covered = {
        (
            e.method.lower(),
            e.path.split("?")[0]
            .replace("{run}", "{run_id}")
            .replace("{circuit}", "{name}")
            .replace("{key}", "{key_id}"),
        )
        for e in TABLE
    }
    assert routes - public == covered


@pytest.fixture(scope="module")
def client(api_env: dict[str, str]) -> Any:
    """One app for the whole matrix (building one per cell costs more than the cells)."""
    from fastapi.testclient import TestClient

    from interfaces.api import create_app
    from storage.migrate import upgrade
    from workers.runtime import runtime

    upgrade(runtime().engine)
    with TestClient(create_app(migrate=False)) as api:
        yield api


@pytest.fixture(scope="module")
def world(client: Any, worker: Any) -> dict[str, Any]:
    """OWN's run, circuit, key, dead letter and audit entries."""
    api = client
    tag = uuid.uuid4().hex[:8]
    name = f"matrix-{tag}"
    text = CIRCUIT.format(name=name, tag=tag)
    assert api.put(f"/v1/circuits/{name}", content=text, headers=auth("author")).status_code == 201
    event_id = new_id()
    api.post(
        "/v1/events",
        json={"id": event_id, "type": "test.sequence", "source": "m", "data": {"n": 1}},
        headers=auth("producer"),
    )
    dead = new_id()
    api.post("/v1/events", json={"id": dead, "type": "bad type", "source": "m"}, headers=auth("producer"))
    run = ended_run(api, auth("viewer"), event_id)
    key = api.post("/v1/keys", json={"role": "viewer", "tenant": OWN}, headers=auth("admin")).json()["id"]
    return {
        "event": event_id,
        "run": run["id"],
        "circuit": name,
        "key": key,
        "dead": dead,
        "text": text,
        "markers": {"run": run["id"], "circuit": name, "key": key, "dead": dead, "audit": OWN},
    }


def _headers(role: str, tenant: str) -> dict[str, str]:
    claims = {"sub": f"matrix-{role}-{tenant}", "tenant": tenant, "role": role, "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


@pytest.mark.parametrize(("endpoint", "role", "side"), CELLS, ids=[f"{e.name}-{r}-{s}" for e, r, s in CELLS])
def test_cell(client: Any, world: dict[str, Any], endpoint: Endpoint, role: str, side: str) -> None:
    tenant = OWN if side == "own" else OTHER
    path = endpoint.path.format(**world)
    kwargs: dict[str, Any] = {"headers": _headers(role, tenant)}
    if endpoint.body == "event":
        kwargs["json"] = {"id": new_id(), "type": "test.matrixnothing", "source": "m", "tenant": OWN}
    elif endpoint.body == "text":
        kwargs["content"] = world["text"]
    elif endpoint.body == "key":
        kwargs["json"] = {"role": "viewer", "tenant": OWN}
    r = client.request(endpoint.method, path, **kwargs)
    allowed = role in PERMISSIONS[endpoint.permission]
    expected = (endpoint.own if side == "own" else endpoint.other) if allowed else 403
    assert r.status_code == expected, r.text
    if r.status_code >= 400:
        assert r.json()["error"]["message"]
    if allowed and endpoint.marker:
        shown = world["markers"][endpoint.marker] in r.text
        assert shown == (side == "own"), f"{endpoint.marker} {'hidden from' if side == 'own' else 'shown to'} {side}"
