"""The RAG search adapter and the `graph` CLI group, against the loaded graph."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from circuits.settings import Settings, get_settings
from intelligence.graph.cli import graph
from intelligence.graph.client import GraphClient
from intelligence.graph.search import GraphSearch


def test_search_finds_accounts_agents_and_products(crm_loaded: GraphClient) -> None:
    search = GraphSearch(crm_loaded)
    hits = search.search("Codehow", k=3)
    assert hits[0]["id"] == "Account:Codehow" and hits[0]["source"] == "graph" and hits[0]["title"] == "Codehow"
    assert "subsidiary of Acme Corporation" in hits[0]["text"] and 0 < hits[0]["score"] <= 1
    assert search.search("who is Moses Frase", k=1)[0]["id"] == "Agent:Moses Frase"
    kenya = search.search("medical companies in Kenya", k=1)[0]
    assert kenya["name"] == "Betatech"  # sector and location both match
    assert search.search("", k=5) == [] and len(search.search("GTX", k=2)) == 2


@pytest.fixture()
def cli_env(graph_settings: Settings, crm_loaded: GraphClient) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    yield {
        "CIRCUIT_NEO4J_URL": str(graph_settings.neo4j_url),
        "CIRCUIT_NEO4J_USER": graph_settings.neo4j_user,
        "CIRCUIT_NEO4J_PASSWORD": graph_settings.neo4j_password,
        "CIRCUIT_HOME": str(graph_settings.home),
    }
    get_settings.cache_clear()


def test_cli_query_and_related(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(graph, ["query", "agent_team", "--param", "name=Anna Snelling"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["office"] == "Central"
    get_settings.cache_clear()
    result = runner.invoke(graph, ["related", "Codehow", "--limit", "3"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["intro_paths"]


def test_cli_refuses_an_unknown_query(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(graph, ["query", "drop_everything"], env=cli_env)
    assert result.exit_code != 0 and "unknown graph query 'drop_everything'" in result.output


def test_cli_lists_the_catalogue() -> None:
    result = CliRunner().invoke(graph, ["query", "--list"])
    assert result.exit_code == 0 and "account(name)" in result.output
