"""POST /v1/events in the three CloudEvents modes, dedupe, dead letters, webhooks, bad requests."""

from __future__ import annotations

import json
import time
from typing import Any

from integrations.notify.signing import sign
from tests.interfaces.conftest import OTHER, OWN, WEBHOOK_SECRET, auth, ended_run, new_id, wait_until

CE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


def test_structured_event_starts_its_run(api: Any, worker: Any) -> None:
    event = {"specversion": "1.0", "id": new_id(), "type": "test.sequence", "source": "crm", "data": {"n": 4}}
    r = api.post("/v1/events", content=json.dumps(event), headers={**auth("producer"), "content-type": CE})
    assert r.status_code == 202, r.text
    assert r.json() == {"ids": [event["id"]], "rejected": []}
    run = ended_run(api, auth("viewer"), event["id"])
    assert run["status"] == "succeeded" and run["tenant"] == OWN
    assert {s["step_id"]: s["output"] for s in run["steps"]}["second"] == {"plus_one": 9}


def test_binary_mode_and_batch_and_dedupe(api: Any, worker: Any) -> None:
    binary_id = new_id()
    headers = {**auth("producer"), "content-type": "application/json", "ce-specversion": "1.0", "ce-id": binary_id}
    r = api.post("/v1/events", content=b'{"n": 1}', headers={**headers, "ce-type": "test.sequence", "ce-source": "x"})
    assert r.status_code == 202 and r.json()["ids"] == [binary_id]
    batch = [{"id": new_id(), "type": "test.sequence", "source": "crm", "data": {"n": i}} for i in range(3)]
    batch.append({"id": new_id(), "type": "not a type", "source": "crm"})
    r = api.post("/v1/events", content=json.dumps(batch), headers={**auth("producer"), "content-type": BATCH})
    assert r.status_code == 202
    assert r.json()["ids"] == [e["id"] for e in batch[:3]]
    assert r.json()["rejected"][0]["field"] == "[3].type"
    again = api.post("/v1/events", content=json.dumps(batch[0]), headers={**auth("producer"), "content-type": CE})
    assert again.status_code == 202  # accepted, and ingest starts nothing twice
    for e in [{"id": binary_id}, *batch[:3]]:
        assert ended_run(api, auth("viewer"), e["id"])["status"] == "succeeded"
    time.sleep(0.5)
    runs = api.get("/v1/runs", params={"event": batch[0]["id"]}, headers=auth("viewer")).json()["runs"]
    assert len(runs) == 1


def test_malformed_event_is_a_dead_letter_of_its_tenant(api: Any) -> None:
    bad = {"id": new_id(), "type": "lead.created", "source": "crm", "colour": "red"}
    r = api.post("/v1/events", json=bad, headers=auth("producer"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_event" and "colour" in r.json()["error"]["message"]

    def dead() -> Any:
        rows = api.get("/v1/events/rejected", headers=auth("viewer")).json()["rejected"]
        return [d for d in rows if bad["id"] in d["raw"]]

    assert wait_until(dead, 10, "the dead letter")[0]["tenant"] == OWN
    rows = api.get("/v1/events/rejected", headers=auth("viewer", OTHER)).json()["rejected"]
    assert not [d for d in rows if bad["id"] in d["raw"]]


def test_bad_requests_get_clear_4xx_json(api: Any) -> None:
    producer = auth("producer")
    ev = {"type": "a.b", "source": "s"}
    cases = [
        (api.post("/v1/events", content=b"{not json", headers={**producer, "content-type": CE}), 400, "malformed"),
        (api.post("/v1/events", content=b"x", headers={**producer, "content-type": "text/csv"}), 415, None),
        (api.post("/v1/events", content=b"[]", headers={**producer, "content-type": BATCH}), 422, "invalid_event"),
        (api.post("/v1/events", content=b"{}", headers={**producer, "content-type": BATCH}), 422, "invalid_event"),
        (api.post("/v1/events", content=b"a" * (1024 * 1024 + 1), headers=producer), 413, "too_large"),
        (api.post("/v1/events", json={"type": "a.b", "source": "s"}), 401, "unauthenticated"),
        (api.post("/v1/events", json=ev, headers={"Authorization": "Bearer nope"}), 401, None),
        (api.post("/v1/events", json=ev, headers={"Authorization": "Basic eDp5"}), 401, None),
        (api.post("/v1/events", json={"type": "a.b", "source": "s", "tenant": OTHER}, headers=producer), 403, None),
        (api.get("/v1/runs", params={"limit": 0}, headers=auth("viewer")), 422, "invalid_request"),
        (api.get("/v1/runs", params={"cursor": "zzz"}, headers=auth("viewer")), 422, "invalid_request"),
        (api.get("/v1/nothing-here"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (status, response.text)
        body = response.json()
        assert body["error"]["message"], body
        if code:
            assert body["error"]["code"] == code
    big = [{"type": "a.b", "source": "s"}] * 1001
    r = api.post("/v1/events", json=big, headers=producer)
    assert r.status_code == 413 and "CIRCUIT_API_MAX_BATCH" in r.json()["error"]["message"]


def test_signed_webhook_becomes_an_event(api: Any, worker: Any) -> None:
    body = json.dumps({"n": 7, "form": "contact"}).encode()
    stamp = str(int(time.time()))
    headers = {"X-Circuit-Timestamp": stamp, "X-Circuit-Signature": sign(WEBHOOK_SECRET, stamp, body)}
    r = api.post("/v1/webhooks/forms", content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 202, r.text
    run = ended_run(api, auth("viewer"), r.json()["ids"][0])
    assert run["status"] == "succeeded" and run["tenant"] == OWN
    again = api.post("/v1/webhooks/forms", content=body, headers=headers)
    assert again.json()["ids"] == r.json()["ids"]  # a redelivery maps to the same event id
    bad = {**headers, "X-Circuit-Signature": sign("wrong", stamp, body)}
    r = api.post("/v1/webhooks/forms", content=body, headers=bad)
    assert r.status_code == 401 and WEBHOOK_SECRET not in r.text
    stale = str(int(time.time()) - 3600)
    r = api.post(
        "/v1/webhooks/forms",
        content=body,
        headers={"X-Circuit-Timestamp": stale, "X-Circuit-Signature": sign(WEBHOOK_SECRET, stale, body)},
    )
    assert r.status_code == 401
    assert api.post("/v1/webhooks/nobody", content=body, headers=headers).status_code == 404


def test_a_nul_character_anywhere_is_a_clear_4xx_never_a_500(api: Any) -> None:
    """Found by schemathesis: ``?circuit=%00`` reached PostgreSQL, which cannot store NUL, and gave a 500."""
    viewer, producer = auth("viewer"), auth("producer")
    for path in ("/v1/runs?circuit=%00", "/v1/runs?status=running%00", "/v1/runs/run%00x", "/v1/events/rejected?q=%01"):
        r = api.get(path, headers=viewer)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "invalid_request" and "control character" in r.json()["error"]["message"]
    event = {"id": new_id(), "type": "test.sequence", "source": "crm", "data": {"name": "a\u0000b"}}
    r = api.post("/v1/events", content=json.dumps(event), headers={**producer, "content-type": CE})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "data.name", r.text
    assert "NUL" in r.json()["error"]["message"]
    raw = b'{"id": "x", "type": "a.b", "source": "s\x00"}'  # a raw NUL byte: not JSON at all
    assert api.post("/v1/events", content=raw, headers={**producer, "content-type": CE}).status_code == 400
    assert api.get("/v1/events/rejected", headers=viewer).status_code == 200  # the dead letters still list
