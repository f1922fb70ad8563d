"""GET /v1/circuits/{name}/graph (the console's step graph) and GET /v1/runs/{id}/event."""

from __future__ import annotations

from typing import Any

from tests.interfaces.conftest import OTHER, auth, ended_run, new_id

NESTED = """
name: graph-shape
trigger: {event: test.graphshape}
steps:
  - id: first
    action: core.set
  - id: fan
    parallel:
      - {id: left, action: core.set}
      - [{id: right1, action: core.set}, {id: right2, action: core.set}]
  - id: check
    if: "steps.first.x > 1"
    then: [{id: hot, action: core.set}]
    else: [{id: cold, action: core.set}]
  - id: each
    foreach: event.data.items
    do: [{id: item, action: core.set}]
on_failure:
  - {id: alarm, action: core.set}
"""


def test_the_graph_of_a_nested_circuit() -> None:
    from circuits.loader import load_text
    from service.graph import circuit_graph

    circuit, _ = load_text(NESTED, file="graph-shape.yaml")
    g = circuit_graph(circuit)
    assert [n["id"] for n in g["nodes"]] == [
        "first", "fan", "left", "right1", "right2", "check", "hot", "cold", "each", "item", "alarm",
    ]  # fmt: skip
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes["fan"]["kind"] == "parallel" and nodes["check"]["kind"] == "if" and nodes["each"]["kind"] == "foreach"
    assert nodes["right2"]["parent"] == "fan" and nodes["right2"]["depth"] == 1
    assert nodes["alarm"]["section"] == "on_failure" and nodes["first"]["parent"] is None
    edges = {(e["source"], e["target"], e["label"]) for e in g["edges"]}
    assert {
        ("first", "fan", None),
        ("fan", "check", None),
        ("check", "each", None),
        ("fan", "left", "branch 1"),
        ("fan", "right1", "branch 2"),
        ("right1", "right2", None),
        ("check", "hot", "then"),
        ("check", "cold", "else"),
        ("each", "item", "each"),
    } == edges


def test_graph_and_run_event_through_the_api(api: Any, worker: Any) -> None:
    g = api.get("/v1/circuits/t-sequence/graph", headers=auth("viewer")).json()
    assert g["name"] == "t-sequence" and g["nodes"] and all(n["kind"] for n in g["nodes"])
    assert api.get("/v1/circuits/nope/graph", headers=auth("viewer")).status_code == 404

    event_id = new_id()
    body = {"id": event_id, "type": "test.sequence", "source": "t", "data": {"n": 3}}
    assert api.post("/v1/events", json=body, headers=auth("producer")).status_code == 202
    run = ended_run(api, auth("viewer"), event_id)
    event = api.get(f"/v1/runs/{run['id']}/event", headers=auth("viewer")).json()
    assert event["id"] == event_id and event["data"] == {"n": 3} and event["type"] == "test.sequence"
    assert api.get(f"/v1/runs/{run['id']}/event", headers=auth("viewer", OTHER)).status_code == 404
