"""Idempotent MERGE of nodes and relationships, one parameterized statement per label/type.

Labels and relationship types come from :mod:`intelligence.graph.schema` (they
cannot be Cypher parameters); keys and properties always travel as parameters.
Running the same upsert twice leaves the graph as it was after the first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from intelligence.graph.client import GraphClient
from intelligence.graph.models import NodeIn, RelIn, UpsertOutput
from intelligence.graph.schema import LABELS, RELATIONSHIPS, schema_statements

__all__ = ["ensure_schema", "node_statement", "rel_statement", "upsert"]

log = logging.getLogger(__name__)

BATCH = 1000


def node_statement(label: str) -> str:
    """MERGE a batch of ``$rows`` ({key, props}) as nodes of ``label``."""
    key = LABELS[label]  # KeyError for an unknown label: never format unchecked text into Cypher
    return f"UNWIND $rows AS row MERGE (n:{label} {{{key}: row.key}}) SET n += row.props"


def rel_statement(rel_type: str, start_label: str, end_label: str) -> str:
    """MERGE a batch of ``$rows`` ({start, end, props}) as ``rel_type`` relationships."""
    rel = RELATIONSHIPS[rel_type]
    if (start_label, end_label) != (rel.start, rel.end):
        raise ValueError(f"{rel_type} joins {rel.start} to {rel.end}, not {start_label} to {end_label}")
    skey, ekey = LABELS[start_label], LABELS[end_label]
    return (
        f"UNWIND $rows AS row MERGE (a:{start_label} {{{skey}: row.start}}) "
        f"MERGE (b:{end_label} {{{ekey}: row.end}}) "
        + (f"MERGE (b)<-[r:{rel_type}]-(a)" if rel.merge_from_end else f"MERGE (a)-[r:{rel_type}]->(b)")
        + " SET r += row.props"
    )


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), BATCH):
        yield rows[i : i + BATCH]


def ensure_schema(client: GraphClient) -> None:
    """Create the uniqueness constraints (idempotent: IF NOT EXISTS)."""
    for stmt in schema_statements():
        client.write(stmt)


def upsert(client: GraphClient, nodes: Iterable[NodeIn], rels: Iterable[RelIn]) -> UpsertOutput:
    """Merge ``nodes`` then ``rels``; returns how many were merged and how many were new."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in nodes:
        by_label[node.label].append({"key": node.key, "props": node.props})
    by_type: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for rel in rels:
        by_type[(rel.type, rel.start.label, rel.end.label)].append(
            {"start": rel.start.key, "end": rel.end.key, "props": rel.props}
        )
    created = {"nodes_created": 0, "relationships_created": 0}
    for label, rows in by_label.items():
        for batch in _batches(rows):
            counts = client.write(node_statement(label), {"rows": batch})
            created["nodes_created"] += counts["nodes_created"]
    for (rel_type, start, end), rows in by_type.items():
        stmt = rel_statement(rel_type, start, end)
        for batch in _batches(rows):
            counts = client.write(stmt, {"rows": batch})
            created["nodes_created"] += counts["nodes_created"]
            created["relationships_created"] += counts["relationships_created"]
    out = UpsertOutput(
        nodes=sum(len(r) for r in by_label.values()),
        relationships=sum(len(r) for r in by_type.values()),
        **created,
    )
    log.info("graph upsert: %s", out.model_dump())
    return out
