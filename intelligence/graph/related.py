"""graph.related: accounts connected to a lead's company, and warm-introduction paths.

An account is related when it shares the lead's parent company (or is its
parent or subsidiary), its sector, its headquarters location, or the sales
agents who worked with it. A warm introduction runs
``lead company <- agent -> account``: an agent who has deals with the lead's
company (or, for a company not in the graph yet, with its parent's family)
and has *won* deals with another account, which can vouch for us.

All queries read the derived WORKED_WITH edges (see :mod:`summary`), are fixed
text with parameters, and run in one rolled-back transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from intelligence.graph.client import GraphClient
from intelligence.graph.models import IntroPath, IntroStep, RelatedAccount, RelatedInput, RelatedOutput

__all__ = ["WEIGHTS", "related"]

log = logging.getLogger(__name__)

#: Score of each kind of connection. Agents are shared widely (each serves ~35 accounts), and
#: 71 of 85 accounts are headquartered in the United States, so those two count for little.
WEIGHTS = {"family": 3.0, "sector": 1.0, "shared": 1.5, "location": 0.25}

_PROFILE = """
MATCH (l:Account) WHERE toLower(l.name) = toLower($name)
OPTIONAL MATCH (l)-[:SUBSIDIARY_OF]->(p:Account)
OPTIONAL MATCH (l)<-[w:WORKED_WITH]-(g:Agent)
RETURN l.name AS name, l.sector AS sector, l.office_location AS location, p.name AS parent,
       collect(g.name) AS agents
LIMIT 1
"""

# family: sibling under the same parent, or the parent itself; child: a subsidiary of the lead.
_RELATED = """
MATCH (a:Account) WHERE a.name <> $name
OPTIONAL MATCH (a)-[:SUBSIDIARY_OF]->(ap:Account)
OPTIONAL MATCH (a)<-[:WORKED_WITH]-(g:Agent) WHERE g.name IN $agents
WITH a, ap.name AS a_parent, collect(g.name) AS shared
WITH a, a_parent, shared,
     CASE WHEN $parent IS NOT NULL AND (a_parent = $parent OR a.name = $parent) THEN 1 ELSE 0 END AS family,
     CASE WHEN a_parent = $name THEN 1 ELSE 0 END AS child,
     CASE WHEN a.sector = $sector THEN 1 ELSE 0 END AS same_sector,
     CASE WHEN a.office_location = $location THEN 1 ELSE 0 END AS same_location
WITH a, a_parent, shared, family, child, same_sector, same_location,
     $w_family * (family + child) + $w_sector * same_sector + $w_location * same_location
     + $w_shared * toFloat(size(shared)) / $n_agents AS score
WHERE family + child + same_sector + size(shared) > 0
RETURN a.name AS name, a.sector AS sector, a.office_location AS location, a_parent AS parent, shared,
       family, child, same_sector, same_location, score
ORDER BY score DESC, name LIMIT $limit
"""

_INTRO = """
UNWIND $anchors AS anchor
MATCH (l:Account {name: anchor})<-[lw:WORKED_WITH]-(g:Agent)
MATCH (g)-[w:WORKED_WITH]->(a:Account)
WHERE w.won > 0 AND NOT a.name IN $anchors AND a.name <> $name
WITH l, lw, g, w, a, w.won + 2 * lw.won AS score
ORDER BY score DESC, w.won_value DESC, a.name LIMIT $limit
RETURN l.name AS anchor, lw.deals AS anchor_deals, lw.won AS anchor_won, g.name AS agent, a.name AS target,
       w.won AS won, w.won_value AS won_value, w.top_deal AS top_deal, w.top_product AS top_product,
       w.top_value AS top_value, score
"""

_FAMILY = """
MATCH (a:Account) WHERE a.name = $parent
OPTIONAL MATCH (s:Account)-[:SUBSIDIARY_OF]->(a)
RETURN a.name AS parent, collect(s.name) AS subsidiaries
"""


def _reasons(row: dict[str, Any], lead: dict[str, Any]) -> list[str]:
    reasons = []
    if row["child"]:
        reasons.append(f"subsidiary of {lead['name']}")
    if row["family"]:
        if row["name"] == lead["parent"]:
            reasons.append(f"parent company of {lead['name']}")
        else:
            reasons.append(f"same parent company ({lead['parent']})")
    if row["same_sector"]:
        reasons.append(f"same sector ({row['sector']})")
    if row["shared"]:
        reasons.append(f"{len(row['shared'])} shared sales agent(s): {', '.join(sorted(row['shared'])[:3])}")
    if row["same_location"]:
        reasons.append(f"same headquarters location ({row['location']})")
    return reasons


def _intro(row: dict[str, Any], lead_name: str, found: bool) -> IntroPath:
    via_parent = "" if found else f" (family of {lead_name}'s parent)"
    top = f"largest: deal {row['top_deal']}, {row['top_product']}, ${row['top_value']:,}" if row["top_deal"] else ""
    steps = [
        IntroStep(
            label="Account",
            name=row["anchor"],
            via=f"{row['anchor_deals']} deal(s), {row['anchor_won']} won, handled by",
        ),
        IntroStep(label="Agent", name=row["agent"], via=f"won {row['won']} deal(s) worth ${row['won_value']:,} with"),
        IntroStep(label="Account", name=row["target"], via=None),
    ]
    explanation = (
        f"{row['agent']} has worked with {row['anchor']}{via_parent} on {row['anchor_deals']} deal(s) "
        f"({row['anchor_won']} won) and won {row['won']} deal(s) worth ${row['won_value']:,} with {row['target']}"
        + (f"; {top}" if top else "")
        + f". Ask {row['agent']} for an introduction through {row['target']}."
    )
    return IntroPath(
        target=row["target"], agent=row["agent"], score=float(row["score"]), steps=steps, explanation=explanation
    )


def related(client: GraphClient, inp: RelatedInput) -> RelatedOutput:
    """Find related accounts and warm-introduction paths for ``inp.company``."""
    with client.reader() as run:
        rows = run(_PROFILE, {"name": inp.company})
        found = bool(rows) and rows[0]["name"] is not None
        if found:
            lead = rows[0]
            anchors = [lead["name"]]
        else:  # a new lead: what the caller told us, and the parent's family as intro anchors
            lead = {
                "name": inp.company,
                "sector": inp.sector,
                "location": inp.office_location,
                "parent": inp.subsidiary_of,
                "agents": [],
            }
            anchors = []
            if inp.subsidiary_of:
                fam = run(_FAMILY, {"parent": inp.subsidiary_of})
                if fam and fam[0]["parent"]:
                    anchors = [fam[0]["parent"], *fam[0]["subsidiaries"]]
                    lead["agents"] = run(
                        "MATCH (g:Agent)-[:WORKED_WITH]->(a:Account) WHERE a.name IN $anchors "
                        "RETURN collect(DISTINCT g.name) AS agents",
                        {"anchors": anchors},
                    )[0]["agents"]
        params = {
            "name": lead["name"],
            "parent": lead["parent"],
            "sector": lead["sector"],
            "location": lead["location"],
            "agents": lead["agents"],
            "n_agents": max(len(lead["agents"]), 1),
            "limit": inp.limit,
            **{f"w_{k}": v for k, v in WEIGHTS.items()},
        }
        rel_rows = run(_RELATED, params)
        intro_rows = run(_INTRO, {"name": lead["name"], "anchors": anchors, "limit": inp.limit}) if anchors else []
    accounts = [
        RelatedAccount(
            name=r["name"],
            score=round(float(r["score"]), 3),
            reasons=_reasons(r, lead),
            sector=r["sector"],
            office_location=r["location"],
            shared_agents=sorted(r["shared"]),
        )
        for r in rel_rows
    ]
    paths = [_intro(r, lead["name"], found) for r in intro_rows]
    log.info("graph.related %r: found=%s, %d accounts, %d intro paths", inp.company, found, len(accounts), len(paths))
    return RelatedOutput(company=lead["name"], found=found, accounts=accounts, intro_paths=paths)
