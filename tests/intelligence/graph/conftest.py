"""A real ArcadeDB Bolt server for the whole session, on free ports in a temporary folder.

The CRM data set is loaded once; tests that write use their own node names so
they never disturb what the read tests check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from circuits.actions import ActionContext, ActionRegistry
from circuits.settings import Settings
from intelligence.graph.client import GraphClient
from intelligence.graph.embedded import EmbeddedGraphServer
from intelligence.graph.loader import load_crm

PASSWORD = "graph-test-password"


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedGraphServer]:
    server = EmbeddedGraphServer(tmp_path_factory.mktemp("graph"), password=PASSWORD)
    with server:
        yield server


@pytest.fixture(scope="session")
def graph_settings(graph_server: EmbeddedGraphServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home: Path = tmp_path_factory.mktemp("home")
    return Settings(neo4j_url=graph_server.bolt_url, neo4j_user=graph_server.user, neo4j_password=PASSWORD, home=home)


@pytest.fixture(scope="session")
def client(graph_server: EmbeddedGraphServer) -> Iterator[GraphClient]:
    c = GraphClient(graph_server.bolt_url, graph_server.user, PASSWORD)
    yield c
    c.close()


@pytest.fixture(scope="session")
def crm_loaded(client: GraphClient) -> GraphClient:
    load_crm(client)
    return client


@pytest.fixture()
def ctx(graph_settings: Settings, crm_loaded: GraphClient) -> Iterator[ActionContext]:
    context = ActionContext.for_test(settings=graph_settings)
    yield context
    context.resources.close()


@pytest.fixture(scope="session")
def registry() -> ActionRegistry:
    return ActionRegistry.from_modules(["intelligence.graph.actions"])
