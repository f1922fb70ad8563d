"""Query router: classify a query's intent, then pick the sources and the strategy.

Rules, not a model: they are cheap (microseconds on the hot path), explainable in the
returned ``reason``, and easy to extend. Intents:

- ``lookup``: an identifier, a quoted phrase or two or three bare keywords; exact words
  matter, so BM25 leads (weighted fusion with a low dense weight);
- ``relational``: asks how things connect ("related to", "who works with", "depends
  on"); the knowledge graph joins the document search;
- ``live``: asks for current state ("latest", "status", "right now"); tool (MCP)
  results join, since documents may be out of date;
- ``semantic``: everything else, a natural-language question; balanced hybrid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intelligence.rag.fusion import DEFAULT_ALPHA

_ID = re.compile(r"\b[A-Z]{2,}-\d+\b|\b\d{3,}\b|\b[a-f0-9]{8,}\b|\"[^\"]+\"")
_RELATIONAL = re.compile(
    r"\b(related to|relationship|connected|connection|linked|depends? on|dependen\w+|reports to|works? with|"
    r"who (?:owns|manages|works)|between .+ and|graph|neighbou?rs?)\b",
    re.I,
)
_LIVE = re.compile(r"\b(latest|current(?:ly)?|right now|today|status|live|real[- ]time|this (?:week|hour))\b", re.I)
_QUESTION = re.compile(r"^(what|why|how|when|where|which|who|can|does|do|is|are|should|explain)\b", re.I)

LOOKUP_ALPHA = 0.2


@dataclass(frozen=True)
class Route:
    """Where to look and how to rank."""

    intent: str
    sources: tuple[str, ...]
    strategy: str
    alpha: float
    reason: str


def route(query: str, available: tuple[str, ...] = ("chroma",)) -> Route:
    """Classify ``query`` and choose among the ``available`` sources (the first is the document store)."""
    primary = available[0] if available else "chroma"
    words = query.split()
    extra: list[str] = []
    if _RELATIONAL.search(query) and "graph" in available:
        extra.append("graph")
    if _LIVE.search(query) and "mcp" in available:
        extra.append("mcp")
    extra += [s for s in available[1:] if s not in ("graph", "mcp") and s not in extra]
    sources = (primary, *extra)
    if _RELATIONAL.search(query):
        return Route("relational", sources, "hybrid", DEFAULT_ALPHA, "asks how things connect")
    if _LIVE.search(query):
        return Route("live", sources, "hybrid", DEFAULT_ALPHA, "asks for current state")
    if _ID.search(query) or (len(words) <= 3 and not _QUESTION.match(query)):
        return Route("lookup", sources, "hybrid", LOOKUP_ALPHA, "identifier, quoted phrase or few keywords")
    return Route("semantic", sources, "hybrid", DEFAULT_ALPHA, "natural-language question")
