"""graph.upsert, graph.related and graph.query, run as a worker runs them, against the real server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from circuits.actions import ActionContext, ActionRegistry
from circuits.errors import DefinitionError
from intelligence.graph.actions import graph_client
from intelligence.graph.catalogue import NameParam, QueryParamError, Template, UnknownQueryError, build_catalogue
from intelligence.graph.search import GraphSearch

INJECTION = "x'}) MATCH (n) DETACH DELETE n //"


def run(registry: ActionRegistry, ctx: ActionContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return registry.get(name).run(ctx, inputs)


def count(registry: ActionRegistry, ctx: ActionContext) -> int:
    rows = run(registry, ctx, "graph.query", {"name": "top_accounts", "params": {"limit": 1000}})["rows"]
    return len(rows)


def test_actions_are_registered_on_the_graph_queue(registry: ActionRegistry) -> None:
    assert {s.name for s in registry} == {"graph.upsert", "graph.related", "graph.query"}
    assert {s.queue for s in registry} == {"graph"}


def test_related_includes_an_account_with_the_same_parent(registry: ActionRegistry, ctx: ActionContext) -> None:
    out = run(registry, ctx, "graph.related", {"company": "Codehow", "limit": 10})
    assert out["found"] is True
    by_name = {a["name"]: a for a in out["accounts"]}
    siblings = {"Bluth Company", "Donquadtech", "Iselectrics"}  # the other subsidiaries of Acme Corporation
    assert siblings <= by_name.keys()
    assert "same parent company (Acme Corporation)" in by_name["Donquadtech"]["reasons"]
    assert "parent company of Codehow" in by_name["Acme Corporation"]["reasons"]
    assert out["accounts"][0]["name"] in siblings | {"Acme Corporation"}  # family ranks first


def test_related_matches_a_known_company_case_insensitively(registry: ActionRegistry, ctx: ActionContext) -> None:
    out = run(registry, ctx, "graph.related", {"company": "DAMBASE", "limit": 5})
    assert out["company"] == "dambase" and out["found"]
    assert "Scottech" in {a["name"] for a in out["accounts"]}  # both are subsidiaries of Inity


def test_intro_path_goes_through_an_agent_with_a_won_deal_and_is_explained(
    registry: ActionRegistry, ctx: ActionContext
) -> None:
    out = run(registry, ctx, "graph.related", {"company": "Codehow", "limit": 5})
    path = out["intro_paths"][0]
    assert [s["label"] for s in path["steps"]] == ["Account", "Agent", "Account"]
    assert path["steps"][0]["name"] == "Codehow" and path["steps"][1]["name"] == path["agent"]
    assert path["agent"] in path["explanation"] and path["target"] in path["explanation"]
    assert "won" in path["explanation"]
    # The won deal the explanation names is real: handled by that agent, for that account.
    deal_id = path["explanation"].split("deal ")[1].split(",")[0]
    deal = run(registry, ctx, "graph.query", {"name": "deal", "params": {"name": deal_id}})["rows"][0]
    assert (deal["stage"], deal["agent"], deal["account"]) == ("Won", path["agent"], path["target"])
    # ...and the agent is shared: they have deals with the lead's company too.
    worked = run(
        registry, ctx, "graph.query", {"name": "agent_accounts", "params": {"name": path["agent"], "limit": 200}}
    )
    assert "Codehow" in {r["account"] for r in worked["rows"]}


def test_new_lead_uses_the_hints(registry: ActionRegistry, ctx: ActionContext) -> None:
    out = run(registry, ctx, "graph.related", {"company": "Brand New Ltd", "subsidiary_of": "Sonron", "limit": 5})
    assert out["found"] is False
    assert {"Faxquote", "Gogozoom", "Treequote"} <= {a["name"] for a in out["accounts"]}
    assert out["intro_paths"] and "family of Brand New Ltd's parent" in out["intro_paths"][0]["explanation"]


def test_query_rejects_unknown_templates_and_write_attempts(registry: ActionRegistry, ctx: ActionContext) -> None:
    before = count(registry, ctx)
    with pytest.raises(UnknownQueryError, match="known templates: account"):
        run(registry, ctx, "graph.query", {"name": "no_such_query", "params": {}})
    with pytest.raises(UnknownQueryError):
        run(registry, ctx, "graph.query", {"name": "MATCH (n) DETACH DELETE n", "params": {}})
    with pytest.raises(QueryParamError, match="cypher: Extra inputs are not permitted"):
        run(registry, ctx, "graph.query", {"name": "account", "params": {"name": "Codehow", "cypher": "CREATE (x)"}})
    with pytest.raises(QueryParamError, match="limit"):
        run(registry, ctx, "graph.query", {"name": "top_accounts", "params": {"limit": "all of them"}})
    with pytest.raises(QueryParamError, match="name: Field required"):
        run(registry, ctx, "graph.query", {"name": "account", "params": {}})
    assert count(registry, ctx) == before


def test_query_returns_rows_of_a_template(registry: ActionRegistry, ctx: ActionContext) -> None:
    out = run(registry, ctx, "graph.query", {"name": "account", "params": {"name": "Acme Corporation"}})
    row = out["rows"][0]
    assert row["sector"] == "technology" and row["parent"] is None
    assert set(row["subsidiaries"]) == {"Bluth Company", "Codehow", "Donquadtech", "Iselectrics"}


def _upsert_payload(tag: str) -> dict[str, Any]:
    return {
        "nodes": [
            {"label": "Account", "key": f"{tag} Co", "props": {"sector": "software", "office_location": "Norway"}},
            {
                "label": "Deal",
                "key": f"{tag}-D1",
                "props": {"stage": "Won", "close_value": 1200, "product": "GTX Basic"},
            },
        ],
        "relationships": [
            {
                "type": "SUBSIDIARY_OF",
                "start": {"label": "Account", "key": f"{tag} Co"},
                "end": {"label": "Account", "key": "Golddex"},
            },
            {
                "type": "HANDLES",
                "start": {"label": "Agent", "key": "Moses Frase"},
                "end": {"label": "Deal", "key": f"{tag}-D1"},
            },
            {
                "type": "FOR_ACCOUNT",
                "start": {"label": "Deal", "key": f"{tag}-D1"},
                "end": {"label": "Account", "key": f"{tag} Co"},
            },
        ],
    }


def test_upsert_twice_is_idempotent(registry: ActionRegistry, ctx: ActionContext) -> None:
    payload = _upsert_payload("Idem")
    first = run(registry, ctx, "graph.upsert", payload)
    assert first["nodes_created"] == 2 and first["relationships_created"] == 3
    second = run(registry, ctx, "graph.upsert", payload)
    assert (second["nodes_created"], second["relationships_created"]) == (0, 0)
    rows = graph_client(ctx).read(
        "MATCH (a:Account {name: 'Idem Co'})<-[r]-(d:Deal) RETURN count(DISTINCT a) AS a, count(r) AS r"
    )
    assert rows == [{"a": 1, "r": 1}]
    # The new won deal shows up in what graph.related reads: Moses Frase now worked with Idem Co.
    worked = run(
        registry, ctx, "graph.query", {"name": "agent_accounts", "params": {"name": "Moses Frase", "limit": 500}}
    )
    idem = [r for r in worked["rows"] if r["account"] == "Idem Co"]
    assert idem == [{"account": "Idem Co", "deals": 1, "won": 1, "lost": 0, "won_value": 1200}]
    related = run(registry, ctx, "graph.related", {"company": "Idem Co"})
    assert "Funholding" in {a["name"] for a in related["accounts"]}  # a sibling under Golddex


def test_cypher_injection_in_a_parameter_is_data(registry: ActionRegistry, ctx: ActionContext) -> None:
    client = graph_client(ctx)
    before = client.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    node = {"label": "Account", "key": INJECTION, "props": {"sector": INJECTION}}
    run(registry, ctx, "graph.upsert", {"nodes": [node]})
    rows = run(registry, ctx, "graph.query", {"name": "account", "params": {"name": INJECTION}})["rows"]
    assert rows[0]["name"] == INJECTION and rows[0]["sector"] == INJECTION
    out = run(registry, ctx, "graph.related", {"company": INJECTION})
    assert out["found"] is True and out["company"] == INJECTION
    assert GraphSearch(client).search(INJECTION, k=3)[0]["name"] == INJECTION
    # Nothing was deleted: exactly one node more than before.
    assert client.read("MATCH (n) RETURN count(n) AS n")[0]["n"] == before + 1


def test_catalogue_refuses_a_template_that_writes() -> None:
    sneaky = Template("sneaky", "looks like a read", "MATCH (n {name: $name}) DETACH DELETE n", NameParam)
    with pytest.raises(DefinitionError, match="write clause"):
        build_catalogue([sneaky])


def test_upsert_refuses_unknown_labels_types_and_property_names(registry: ActionRegistry, ctx: ActionContext) -> None:
    with pytest.raises(ValidationError, match="unknown label"):
        run(registry, ctx, "graph.upsert", {"nodes": [{"label": "Account) DETACH DELETE (x", "key": "a"}]})
    with pytest.raises(ValidationError, match="unknown relationship type"):
        bad = {"type": "WORKED_WITH", "start": {"label": "Agent", "key": "a"}, "end": {"label": "Account", "key": "b"}}
        run(registry, ctx, "graph.upsert", {"relationships": [bad]})
    with pytest.raises(ValidationError, match="identifiers"):
        run(registry, ctx, "graph.upsert", {"nodes": [{"label": "Account", "key": "a", "props": {"x}) SET (y": 1}}]})
    with pytest.raises(ValidationError, match="joins Agent to Deal"):  # Agent -> Account is not what HANDLES joins
        bad = {"type": "HANDLES", "start": {"label": "Agent", "key": "a"}, "end": {"label": "Account", "key": "b"}}
        run(registry, ctx, "graph.upsert", {"relationships": [bad]})
