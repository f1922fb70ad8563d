"""The derived (:Agent)-[:WORKED_WITH]->(:Account) edges: one per agent and account.

Each carries the counts of the agent's deals with the account (``deals``, ``won``,
``lost``, ``won_value``) and its largest won deal (``top_deal``, ``top_product``,
``top_value``), so a warm-introduction path can name a real won deal without
walking every deal at query time. Rebuilt after a load, and refreshed for the
touched pairs after an upsert that writes deals. A deal moved to another account
leaves the old pair's counts as they were until the next full rebuild (``graph load``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from intelligence.graph.client import GraphClient

__all__ = ["refresh_worked_with"]

log = logging.getLogger(__name__)

_PAIRS_OF = (
    "UNWIND $deal_ids AS deal_id "
    "MATCH (g:Agent)-[:HANDLES]->(:Deal {id: deal_id})-[:FOR_ACCOUNT]->(a:Account) WITH DISTINCT g, a"
)
# One pass over all deals for a full rebuild; for an upsert, the pairs first, then their deals.
_ALL = "MATCH (g:Agent)-[:HANDLES]->(d:Deal)-[:FOR_ACCOUNT]->(a:Account)"
_OF_PAIRS = " MATCH (g)-[:HANDLES]->(d:Deal)-[:FOR_ACCOUNT]->(a)"
_AGGREGATE = """
WITH g, a, d ORDER BY d.close_value DESC
WITH g, a, count(d) AS deals,
     sum(CASE WHEN d.stage = 'Won' THEN 1 ELSE 0 END) AS won,
     sum(CASE WHEN d.stage = 'Lost' THEN 1 ELSE 0 END) AS lost,
     sum(CASE WHEN d.stage = 'Won' THEN coalesce(d.close_value, 0) ELSE 0 END) AS won_value,
     collect(CASE WHEN d.stage = 'Won' THEN d END) AS won_deals
WITH g, a, deals, won, lost, won_value, CASE WHEN size(won_deals) > 0 THEN won_deals[0] END AS top
MERGE (g)-[w:WORKED_WITH]->(a)
SET w.deals = deals, w.won = won, w.lost = lost, w.won_value = won_value,
    w.top_deal = top.id, w.top_product = top.product, w.top_value = top.close_value,
    w.top_close_date = top.close_date
"""


def refresh_worked_with(client: GraphClient, deal_ids: Sequence[str] | None = None) -> int:
    """Recompute WORKED_WITH for every pair, or only for the pairs ``deal_ids`` belong to."""
    if deal_ids is None:
        counts = client.write(_ALL + _AGGREGATE)
    elif deal_ids:
        counts = client.write(_PAIRS_OF + _OF_PAIRS + _AGGREGATE, {"deal_ids": list(deal_ids)})
    else:
        return 0
    log.info("refreshed WORKED_WITH summaries: %s", counts)
    return counts["relationships_created"]
