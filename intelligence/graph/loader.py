"""Load the CRM sales opportunities data set (data/crm_sales_opportunities) into the graph.

The source has traps, fixed here and documented in its SOURCE.md:
the sector ``technolgy`` (read as ``technology``), the pipeline's product
``GTXPro`` (``GTX Pro`` in products.csv), open deals without an account (kept,
without a FOR_ACCOUNT edge), and empty dates/values (null, never 0 or "").
CRLF line endings are handled by the csv module.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from circuits.errors import ConfigError
from circuits.settings import PACKAGE_ROOT
from intelligence.graph.client import GraphClient
from intelligence.graph.models import NodeIn, NodeRef, RelIn, UpsertOutput
from intelligence.graph.summary import refresh_worked_with
from intelligence.graph.upsert import ensure_schema, upsert

__all__ = ["DATA_DIR", "CrmGraph", "load_crm", "read_crm"]

log = logging.getLogger(__name__)

DATA_DIR = PACKAGE_ROOT / "data" / "crm_sales_opportunities"
SECTOR_FIXES = {"technolgy": "technology"}
PRODUCT_FIXES = {"GTXPro": "GTX Pro"}


@dataclass
class CrmGraph:
    """The data set as nodes and relationships, ready for :func:`upsert`."""

    by_key: dict[tuple[str, str], NodeIn] = field(default_factory=dict)
    rels: list[RelIn] = field(default_factory=list)
    _seen_rels: set[tuple[str, tuple[str, str], tuple[str, str]]] = field(default_factory=set)

    @property
    def nodes(self) -> list[NodeIn]:
        return list(self.by_key.values())

    def node(self, label: str, key: str, **props: object) -> None:
        seen = self.by_key.get((label, key))
        if seen is None:
            self.by_key[(label, key)] = NodeIn(label=label, key=key, props=props)  # type: ignore[arg-type]
        else:
            seen.props.update(props)  # type: ignore[arg-type]

    def rel(self, rel_type: str, start: tuple[str, str], end: tuple[str, str]) -> None:
        if (rel_type, start, end) in self._seen_rels:  # e.g. BASED_IN repeats once per agent
            return
        self._seen_rels.add((rel_type, start, end))
        self.rels.append(
            RelIn(type=rel_type, start=NodeRef(label=start[0], key=start[1]), end=NodeRef(label=end[0], key=end[1]))
        )


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise ConfigError(f"CRM data file missing: {path}")
    with path.open(newline="", encoding="ascii") as fh:
        for row in csv.DictReader(fh):
            yield {k.strip(): (v or "").strip() for k, v in row.items()}


def _num(text: str) -> int | float | None:
    if not text:
        return None
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _accounts(g: CrmGraph, data_dir: Path) -> None:
    for row in _rows(data_dir / "accounts.csv"):
        name = row["account"]
        sector = SECTOR_FIXES.get(row["sector"], row["sector"])
        g.node(
            "Account",
            name,
            sector=sector,
            office_location=row["office_location"],
            year_established=_num(row["year_established"]),
            revenue=_num(row["revenue"]),
            employees=_num(row["employees"]),
        )
        g.node("Sector", sector)
        g.node("Location", row["office_location"])
        g.rel("IN_SECTOR", ("Account", name), ("Sector", sector))
        g.rel("HEADQUARTERED_IN", ("Account", name), ("Location", row["office_location"]))
        if row["subsidiary_of"]:
            g.rel("SUBSIDIARY_OF", ("Account", name), ("Account", row["subsidiary_of"]))


def _teams(g: CrmGraph, data_dir: Path) -> None:
    for row in _rows(data_dir / "sales_teams.csv"):
        agent, manager, office = row["sales_agent"], row["manager"], row["regional_office"]
        g.node("Agent", agent, manager=manager, regional_office=office)
        g.node("Manager", manager, regional_office=office)
        g.node("Office", office)
        g.rel("REPORTS_TO", ("Agent", agent), ("Manager", manager))
        g.rel("WORKS_IN", ("Agent", agent), ("Office", office))
        g.rel("BASED_IN", ("Manager", manager), ("Office", office))


def _products(g: CrmGraph, data_dir: Path) -> None:
    for row in _rows(data_dir / "products.csv"):
        g.node("Product", row["product"], series=row["series"], sales_price=_num(row["sales_price"]))


def _deals(g: CrmGraph, data_dir: Path) -> None:
    for row in _rows(data_dir / "sales_pipeline.csv"):
        deal_id = row["opportunity_id"]
        product = PRODUCT_FIXES.get(row["product"], row["product"])
        g.node(
            "Deal",
            deal_id,
            stage=row["deal_stage"],
            agent=row["sales_agent"],
            product=product,
            account=row["account"] or None,
            engage_date=row["engage_date"] or None,
            close_date=row["close_date"] or None,
            close_value=_num(row["close_value"]),
        )
        g.rel("HANDLES", ("Agent", row["sales_agent"]), ("Deal", deal_id))
        g.rel("OF_PRODUCT", ("Deal", deal_id), ("Product", product))
        if row["account"]:  # 1,425 open deals have no account yet
            g.rel("FOR_ACCOUNT", ("Deal", deal_id), ("Account", row["account"]))


def read_crm(data_dir: Path = DATA_DIR) -> CrmGraph:
    """Parse the four CSV files into nodes and relationships (no I/O to the graph)."""
    g = CrmGraph()
    for part in (_accounts, _teams, _products, _deals):
        part(g, data_dir)
    return g


def load_crm(client: GraphClient, data_dir: Path = DATA_DIR) -> UpsertOutput:
    """Create the schema, merge the whole data set and rebuild the summaries; safe to run again."""
    ensure_schema(client)
    g = read_crm(data_dir)
    out = upsert(client, g.nodes, g.rels)
    refresh_worked_with(client)
    log.info("loaded CRM data from %s: %s nodes, %s relationships", data_dir, out.nodes, out.relationships)
    return out
