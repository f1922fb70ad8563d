"""The knowledge-graph actions: graph.upsert, graph.related, graph.query (queue "graph").

Importing this module is cheap: the ``neo4j`` driver is imported when the
first action runs, and the client (one connection pool) is built once per
worker process through ``ctx.resource``. Nothing here imports Celery.
"""

from __future__ import annotations

from circuits.actions import ActionContext, action
from intelligence.graph.catalogue import get_template
from intelligence.graph.client import GraphClient, client_from_settings
from intelligence.graph.models import (
    QueryInput,
    QueryOutput,
    RelatedInput,
    RelatedOutput,
    UpsertInput,
    UpsertOutput,
)
from intelligence.graph.related import related as find_related
from intelligence.graph.summary import refresh_worked_with
from intelligence.graph.upsert import upsert as merge

__all__ = ["RESOURCE", "graph_client", "query", "related", "upsert"]

#: The name of the per-process graph client in ``ctx.resources``.
RESOURCE = "graph.client"

_DEAL_EDGES = {"HANDLES", "FOR_ACCOUNT"}


def graph_client(ctx: ActionContext) -> GraphClient:
    """The process's graph client, built from settings on first use."""
    return ctx.resource(RESOURCE, lambda: client_from_settings(ctx.settings))


@action("graph.upsert", queue="graph", retries=3, timeout_s=60)
def upsert(ctx: ActionContext, inp: UpsertInput) -> UpsertOutput:
    """Merge nodes and relationships of the known labels; running it twice changes nothing."""
    client = graph_client(ctx)
    out = merge(client, inp.nodes, inp.relationships)
    deal_ids = {str(n.key) for n in inp.nodes if n.label == "Deal"}
    deal_ids |= {str(r.start.key) for r in inp.relationships if r.type == "FOR_ACCOUNT"}
    deal_ids |= {str(r.end.key) for r in inp.relationships if r.type == "HANDLES"}
    if deal_ids:  # keep the WORKED_WITH summaries that graph.related reads in step with the deals
        refresh_worked_with(client, sorted(deal_ids))
    ctx.log.info("graph.upsert merged %d nodes, %d relationships", out.nodes, out.relationships)
    return out


@action("graph.related", queue="graph", retries=3, timeout_s=30)
def related(ctx: ActionContext, inp: RelatedInput) -> RelatedOutput:
    """Accounts related to a lead's company, and warm-introduction paths to them, explained."""
    return find_related(graph_client(ctx), inp)


@action("graph.query", queue="graph", retries=3, timeout_s=30)
def query(ctx: ActionContext, inp: QueryInput) -> QueryOutput:
    """Run a named, read-only query template from the catalogue with validated parameters."""
    template = get_template(inp.name)
    params = template.bind(inp.params)
    rows = graph_client(ctx).read(template.cypher, params)
    return QueryOutput(name=template.name, rows=rows)
