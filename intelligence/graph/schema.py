"""The shape of the knowledge graph: which labels and relationship types exist.

Every write goes through this vocabulary, so a label or relationship type can
never come from event data: Cypher cannot take labels as parameters, and the
only safe way to put one in query text is to pick it from a fixed list.

Graph model (CRM sales opportunities)::

    (:Account)-[:SUBSIDIARY_OF]->(:Account)
    (:Account)-[:IN_SECTOR]->(:Sector)
    (:Account)-[:HEADQUARTERED_IN]->(:Location)
    (:Agent)-[:REPORTS_TO]->(:Manager)-[:BASED_IN]->(:Office)
    (:Agent)-[:WORKS_IN]->(:Office)
    (:Agent)-[:HANDLES]->(:Deal)-[:FOR_ACCOUNT]->(:Account)
    (:Deal)-[:OF_PRODUCT]->(:Product)
    (:Agent)-[:WORKED_WITH {deals, won, lost, won_value, top_deal, ...}]->(:Account)   derived

WORKED_WITH summarises an agent's deals with one account. It is derived from
the deals (see :mod:`intelligence.graph.summary`), never upserted directly, and
it is what keeps ``graph.related`` fast: a two-hop walk over ~1,300 summary edges
instead of ~15,000 deal edges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DERIVED_RELATIONSHIPS",
    "LABELS",
    "RELATIONSHIPS",
    "DEAL_STAGES",
    "RelType",
    "schema_statements",
    "check_property_name",
]

#: Label -> the property that identifies a node of that label (MERGE key).
LABELS: dict[str, str] = {
    "Account": "name",
    "Sector": "name",
    "Location": "name",
    "Agent": "name",
    "Manager": "name",
    "Office": "name",
    "Product": "name",
    "Deal": "id",
}

DEAL_STAGES: tuple[str, ...] = ("Prospecting", "Engaging", "Won", "Lost")


@dataclass(frozen=True)
class RelType:
    """A relationship type and the labels it may join (start -> end)."""

    name: str
    start: str
    end: str
    #: Write the MERGE pattern from the end node: ArcadeDB walks the edges of the node written
    #: first, so it should be the low-degree side (a deal has one agent, an agent ~250 deals).
    merge_from_end: bool = False


RELATIONSHIPS: dict[str, RelType] = {
    r.name: r
    for r in (
        RelType("SUBSIDIARY_OF", "Account", "Account"),
        RelType("IN_SECTOR", "Account", "Sector"),
        RelType("HEADQUARTERED_IN", "Account", "Location"),
        RelType("REPORTS_TO", "Agent", "Manager"),
        RelType("WORKS_IN", "Agent", "Office"),
        RelType("BASED_IN", "Manager", "Office"),
        RelType("HANDLES", "Agent", "Deal", merge_from_end=True),
        RelType("FOR_ACCOUNT", "Deal", "Account"),
        RelType("OF_PRODUCT", "Deal", "Product"),
    )
}

#: Relationship types computed from others; upsert refuses them.
DERIVED_RELATIONSHIPS: tuple[str, ...] = ("WORKED_WITH",)

# A property name goes into query text (SET n.`name`), so it must be a plain identifier.
_PROPERTY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_property_name(name: str) -> bool:
    """True if ``name`` is safe to use as a property key in query text."""
    return bool(_PROPERTY_RE.match(name))


def schema_statements() -> list[str]:
    """Uniqueness constraints on every MERGE key (they also serve as lookup indexes)."""
    return [
        f"CREATE CONSTRAINT {label.lower()}_{key} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
        for label, key in LABELS.items()
    ]
