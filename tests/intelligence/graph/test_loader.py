"""The CRM data set as a user would check it after `circuit-os graph load`, traps included."""

from __future__ import annotations

from intelligence.graph.client import GraphClient
from intelligence.graph.loader import read_crm


def test_parsing_fixes_the_source_traps() -> None:
    g = read_crm()
    accounts = {n.key: n.props for n in g.nodes if n.label == "Account"}
    deals = {n.key: n.props for n in g.nodes if n.label == "Deal"}
    assert len(accounts) == 85 and len(deals) == 8800
    assert "technolgy" not in {p["sector"] for p in accounts.values()}
    assert sum(p["sector"] == "technology" for p in accounts.values()) == 12
    assert "GTXPro" not in {p["product"] for p in deals.values()}
    open_without_account = [p for p in deals.values() if p["account"] is None]
    assert len(open_without_account) == 1425
    assert {p["stage"] for p in open_without_account} == {"Engaging", "Prospecting"}
    assert all(
        p["close_value"] is None and p["close_date"] is None
        for p in deals.values()
        if p["stage"] in ("Engaging", "Prospecting")
    )


def test_loaded_graph_has_every_entity_and_edge(crm_loaded: GraphClient) -> None:
    counts = {r["label"]: r["n"] for r in crm_loaded.read("MATCH (n) RETURN labels(n)[0] AS label, count(n) AS n")}
    assert counts["Account"] >= 85 and counts["Agent"] >= 35 and counts["Deal"] >= 8800
    assert counts["Product"] == 7 and counts["Manager"] == 6 and counts["Office"] == 3
    rels = {r["t"]: r["n"] for r in crm_loaded.read("MATCH ()-[r]->() RETURN type(r) AS t, count(r) AS n")}
    assert rels["SUBSIDIARY_OF"] >= 15 and rels["FOR_ACCOUNT"] >= 7375 and rels["HANDLES"] >= 8800
    # Every pipeline product name resolves to a products.csv node (GTXPro -> GTX Pro).
    assert crm_loaded.read("MATCH (d:Deal)-[:OF_PRODUCT]->(p:Product) WHERE p.series IS NULL RETURN count(d) AS n") == [
        {"n": 0}
    ]


def test_agents_reach_their_regional_office_through_their_manager(crm_loaded: GraphClient) -> None:
    rows = crm_loaded.read(
        "MATCH (:Agent {name: $a})-[:REPORTS_TO]->(m:Manager)-[:BASED_IN]->(o:Office) RETURN m.name AS m, o.name AS o",
        {"a": "Anna Snelling"},
    )
    assert rows == [{"m": "Dustin Brinkmann", "o": "Central"}]


def test_loading_again_creates_nothing(crm_loaded: GraphClient) -> None:
    from intelligence.graph.loader import load_crm

    again = load_crm(crm_loaded)
    assert again.nodes_created == 0 and again.relationships_created == 0
