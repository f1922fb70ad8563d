"""GET /v1/runs filters and cursor paging; retry and cancel through the API, audited."""

from __future__ import annotations

from typing import Any

from tests.interfaces.conftest import OTHER, auth, ended_run, new_id, wait_until


def _publish(api: Any, type_: str, data: dict[str, Any]) -> str:
    event_id = new_id()
    body = {"id": event_id, "type": type_, "source": "t", "data": data}
    assert api.post("/v1/events", json=body, headers=auth("producer")).status_code == 202
    return event_id


def test_filters_and_cursor_paging(api: Any, worker: Any) -> None:
    ids = [_publish(api, "test.sequence", {"n": i}) for i in range(5)]
    for event_id in ids:
        ended_run(api, auth("viewer"), event_id)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"circuit": "t-sequence", "status": "succeeded", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/runs", params=params, headers=auth("viewer")).json()
        seen += [r["event_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if not cursor or set(ids) <= set(seen):
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))  # no run twice across pages
    latest = api.get("/v1/runs", params={"limit": 10}, headers=auth("viewer")).json()["runs"]
    started = [r["started_at"] for r in latest]
    assert started == sorted(started, reverse=True)
    assert api.get("/v1/runs", params={"since": "2999-01-01T00:00:00Z"}, headers=auth("viewer")).json()["runs"] == []
    assert api.get("/v1/runs", params={"circuit": "t-sequence"}, headers=auth("viewer", OTHER)).json()["runs"] == []


def test_retry_and_cancel(api: Any, worker: Any) -> None:
    event_id = _publish(api, "test.failure", {"reason": "no stock"})
    run = ended_run(api, auth("viewer"), event_id)
    assert run["status"] == "failed" and "no stock" in run["error"]
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["boom"]["status"] == "failed" and steps["ok"]["output"] == {"x": 1}
    assert api.post(f"/v1/runs/{run['id']}/retry", headers=auth("viewer")).status_code == 403
    assert api.post(f"/v1/runs/{run['id']}/retry", headers=auth("operator", OTHER)).status_code == 404
    r = api.post(f"/v1/runs/{run['id']}/retry", headers=auth("operator"))
    assert r.status_code == 200 and r.json()["circuit"] == "t-failure"

    def failed_again() -> Any:
        got = api.get(f"/v1/runs/{run['id']}", headers=auth("viewer")).json()
        return got["status"] == "failed" and got

    wait_until(failed_again, 20, "the retried run to fail again")
    r = api.post(f"/v1/runs/{run['id']}/cancel", headers=auth("operator"))
    assert r.status_code == 409 and "already ended" in r.json()["error"]["message"]
    assert api.post("/v1/runs/no-such-run/cancel", headers=auth("operator")).status_code == 404
    entries = api.get("/v1/audit", headers=auth("admin")).json()["entries"]
    assert ("run.retry", run["id"]) in [(e["action"], e["target"]) for e in entries]
