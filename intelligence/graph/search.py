"""A search adapter so RAG multi-source fusion can include knowledge-graph results.

``GraphSearch(client).search(query, k)`` returns up to ``k`` dicts, best first::

    {"id": "Account:Codehow", "text": "Codehow: software company headquartered in ...",
     "score": 0.83, "source": "graph", "title": "Codehow", "label": "Account", "name": "Codehow"}

Plug it into RAG fusion with ``intelligence.rag.sources.CallableSource("graph", GraphSearch(client).search)``,
which prefixes ids with the source name (``graph:Account:Codehow``) and keeps the other keys as metadata.

``score`` is in [0, 1]: the share of the query's words found in the node's name,
plus 0.25 each when the query mentions the account's sector or location. Accounts,
sales agents and products are searched, each with a sentence of context from
the graph. Queries are fixed text; the user's words travel only as parameters.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from intelligence.graph.client import GraphClient

__all__ = ["GraphSearch"]

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9][a-z0-9\-]{2,}")
_STOP = {"the", "and", "for", "with", "company", "companies", "who", "what", "which", "inc", "corp"}

_ACCOUNTS = """
MATCH (a:Account)
WITH a, size([t IN $tokens WHERE toLower(a.name) CONTAINS t]) AS name_hits,
     CASE WHEN $text CONTAINS toLower(a.sector) THEN 1 ELSE 0 END
     + CASE WHEN $text CONTAINS toLower(a.office_location) THEN 1 ELSE 0 END AS attr
WHERE name_hits + attr > 0
OPTIONAL MATCH (a)-[:SUBSIDIARY_OF]->(p:Account)
OPTIONAL MATCH (g:Agent)-[w:WORKED_WITH]->(a)
WITH a, name_hits, attr, p, sum(w.won) AS won, sum(w.won_value) AS won_value, count(g) AS agents
RETURN a.name AS name, a.sector AS sector, a.office_location AS location, p.name AS parent,
       won, won_value, agents, name_hits, attr
ORDER BY name_hits DESC, attr DESC, won_value DESC LIMIT $k
"""

_AGENTS = """
MATCH (g:Agent)
WITH g, size([t IN $tokens WHERE toLower(g.name) CONTAINS t]) AS name_hits
WHERE name_hits > 0
OPTIONAL MATCH (g)-[w:WORKED_WITH]->(:Account)
RETURN g.name AS name, g.manager AS manager, g.regional_office AS office,
       count(w) AS accounts, sum(w.won) AS won, name_hits
ORDER BY name_hits DESC, won DESC LIMIT $k
"""

_PRODUCTS = """
MATCH (p:Product)
WITH p, size([t IN $tokens WHERE toLower(p.name) CONTAINS t]) AS name_hits
WHERE name_hits > 0
RETURN p.name AS name, p.series AS series, p.sales_price AS price, name_hits
ORDER BY name_hits DESC LIMIT $k
"""


class GraphSearch:
    """Keyword search over the knowledge graph, shaped for RAG fusion (``source="graph"``)."""

    name = "graph"

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """Up to ``k`` graph items matching ``query``, best first."""
        text = query.lower()[:500]
        tokens = [t for t in dict.fromkeys(_WORD.findall(text)) if t not in _STOP][:20]
        if not tokens or k <= 0:
            return []
        params = {"tokens": tokens, "text": text, "k": k}
        n = len(tokens)
        with self.client.reader() as run:
            items = [self._account(r, n) for r in run(_ACCOUNTS, params)]
            items += [self._agent(r, n) for r in run(_AGENTS, params)]
            items += [self._product(r, n) for r in run(_PRODUCTS, params)]
        items.sort(key=lambda item: (-item["score"], item["id"]))
        log.debug("graph search %r: %d hits", query, len(items))
        return items[:k]

    @staticmethod
    def _item(label: str, name: str, text: str, score: float) -> dict[str, Any]:
        return {
            "id": f"{label}:{name}",
            "text": text,
            "score": round(min(score, 1.0), 4),
            "source": "graph",
            "title": name,
            "label": label,
            "name": name,
        }

    def _account(self, r: dict[str, Any], n: int) -> dict[str, Any]:
        parent = f", subsidiary of {r['parent']}" if r["parent"] else ""
        text = (
            f"{r['name']}: {r['sector']} company headquartered in {r['location']}{parent}; "
            f"{r['won'] or 0} won deals worth ${r['won_value'] or 0:,} with {r['agents']} sales agent(s)."
        )
        return self._item("Account", r["name"], text, r["name_hits"] / n + 0.25 * r["attr"])

    def _agent(self, r: dict[str, Any], n: int) -> dict[str, Any]:
        text = (
            f"{r['name']}: sales agent reporting to {r['manager']} in the {r['office']} office; "
            f"worked with {r['accounts']} account(s), {r['won'] or 0} deals won."
        )
        return self._item("Agent", r["name"], text, r["name_hits"] / n)

    def _product(self, r: dict[str, Any], n: int) -> dict[str, Any]:
        text = f"{r['name']}: product of the {r['series']} series, list price ${r['price']:,}."
        return self._item("Product", r["name"], text, r["name_hits"] / n)
