"""Validate and deploy circuits through the API; the running worker uses a new version without a restart."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.interfaces.conftest import OTHER, OWN, auth, ended_run, new_id

CIRCUIT = """name: {name}
trigger: {{event: {type}}}
steps:
  - id: answer
    action: core.set
    with: {{answer: "{answer}", n: "{{{{ event.data.n }}}}"}}
"""


def _publish(api: Any, type_: str, tenant: str = OWN) -> str:
    event_id = new_id()
    r = api.post(
        "/v1/events",
        json={"id": event_id, "type": type_, "source": "t", "data": {"n": 1}},
        headers=auth("producer", tenant),
    )
    assert r.status_code == 202, r.text
    return event_id


def _no_run(api: Any, ledger: Any, event_id: str, tenant: str = OWN) -> None:
    from sqlalchemy import select

    from storage.ledger import EventRow
    from tests.conftest import wait_for

    def recorded() -> Any:
        with ledger.connect() as conn:
            return conn.execute(select(EventRow.runs_started).where(EventRow.id == event_id)).first()

    assert wait_for(recorded, 15, "the event in the ledger").runs_started == 0
    assert api.get("/v1/runs", params={"event": event_id}, headers=auth("admin", "*")).json()["runs"] == []


def test_validate_reports_problems_with_lines(api: Any) -> None:
    text = "name: bad-one\ntrigger: {event: a.b}\nsteps:\n  - id: x\n    action: core.nope\n"
    r = api.post("/v1/circuits/validate", content=text, headers={**auth("author"), "content-type": "text/plain"})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False and body["problems"][0]["line"] == 5 and "core.nope" in body["problems"][0]["message"]
    good = CIRCUIT.format(name="good-one", type="a.b", answer="x")
    r = api.post("/v1/circuits/validate", json={"text": good}, headers=auth("author"))
    assert r.json() == {"valid": True, "problems": []}
    r = api.put("/v1/circuits/bad-one", content=text, headers=auth("author"))
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["line"] == 5
    r = api.put("/v1/circuits/other-name", content=good, headers=auth("author"))
    assert r.status_code == 422 and "other-name" in r.json()["error"]["problems"][0]["message"]


def test_deploy_versions_reach_the_running_worker(api: Any, ledger: Any, worker: Any) -> None:
    name, type_ = f"deployed-{uuid.uuid4().hex[:8]}", f"test.deploy{uuid.uuid4().hex[:8]}"
    r = api.put(
        f"/v1/circuits/{name}", content=CIRCUIT.format(name=name, type=type_, answer="first"), headers=auth("author")
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["tenant"] == OWN
    time.sleep(1.2)  # every process looks at the deploy revision at most once a second
    run = ended_run(api, auth("viewer"), _publish(api, type_))
    assert run["circuit"] == name and run["circuit_version"].startswith("1+")
    assert run["steps"][0]["output"] == {"answer": "first", "n": 1}

    r = api.put(
        f"/v1/circuits/{name}", content=CIRCUIT.format(name=name, type=type_, answer="second"), headers=auth("author")
    )
    assert r.json()["version"] == 2
    time.sleep(1.2)
    run = ended_run(api, auth("viewer"), _publish(api, type_))
    assert run["circuit_version"].startswith("2+") and run["steps"][0]["output"]["answer"] == "second"
    listed = {c["name"]: c for c in api.get("/v1/circuits", headers=auth("viewer")).json()["circuits"]}
    assert listed[name]["origin"] == "deployed" and listed[name]["version"].startswith("2+")
    detail = api.get(f"/v1/circuits/{name}", headers=auth("viewer")).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]

    assert api.post(f"/v1/circuits/{name}/disable", headers=auth("author")).json() == {"name": name, "enabled": False}
    time.sleep(1.2)
    _no_run(api, ledger, _publish(api, type_))
    api.post(f"/v1/circuits/{name}/enable", headers=auth("author"))
    time.sleep(1.2)
    assert ended_run(api, auth("viewer"), _publish(api, type_))["status"] == "succeeded"

    # a tenant's circuit sees only its tenant's events, and its name is taken for others
    _no_run(api, ledger, _publish(api, type_, OTHER))
    text = CIRCUIT.format(name=name, type=type_, answer="theirs")
    assert api.put(f"/v1/circuits/{name}", content=text, headers=auth("author", OTHER)).status_code == 409
    assert name not in json.dumps(api.get("/v1/circuits", headers=auth("viewer", OTHER)).json())

    actions = [(e["action"], e["target"]) for e in api.get("/v1/audit", headers=auth("admin")).json()["entries"]]
    for action in ("circuit.deploy", "circuit.disable", "circuit.enable"):
        assert (action, name) in actions
