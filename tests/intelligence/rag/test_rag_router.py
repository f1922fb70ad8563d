"""Part 1, query router: intent decides sources and strategy, and that changes results."""

from __future__ import annotations

from intelligence.rag.router import LOOKUP_ALPHA, route
from intelligence.rag.service import RagService
from intelligence.rag.sources import ListSource

ALL = ("chroma", "graph", "mcp")


def test_intents_pick_sources_and_strategy() -> None:
    lookup = route("ERR-429", ALL)
    assert lookup.intent == "lookup" and lookup.sources == ("chroma",) and lookup.alpha == LOOKUP_ALPHA

    relational = route("who works with Alice on the Initech account", ALL)
    assert relational.intent == "relational" and relational.sources == ("chroma", "graph")

    live = route("what is the current status of the Acme renewal", ALL)
    assert live.intent == "live" and live.sources == ("chroma", "mcp")

    semantic = route("how do customers get their money back", ALL)
    assert semantic.intent == "semantic" and semantic.sources == ("chroma",)
    assert semantic.alpha > lookup.alpha  # meaning matters more than exact words


def test_unavailable_sources_are_never_chosen() -> None:
    assert route("who works with Alice", ("chroma",)).sources == ("chroma",)


def test_relational_query_brings_graph_results_into_retrieval(kb: RagService) -> None:
    graph = ListSource(
        "graph",
        [{"id": "alice", "text": "Alice works with Bob on the Initech account; Alice manages onboarding."}],
    )
    related = kb.retrieve("helpdesk", "who works with Alice on onboarding", k=5, sources=[graph])
    plain = kb.retrieve("helpdesk", "onboarding checklist for Alice", k=5, sources=[graph])

    assert related.route.intent == "relational"
    assert "graph" in {h.source for h in related.hits}
    assert plain.route.intent != "relational"
    assert "graph" not in {h.source for h in plain.hits}  # the router kept the graph out
