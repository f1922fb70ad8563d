"""The fixed catalogue of read-only, parameterized query templates behind graph.query.

A circuit names a template and passes parameters; it can never send Cypher.
Each template's parameters are a pydantic model that forbids extra keys, so a
wrong or missing parameter is refused before anything reaches the server.
Templates are checked at import for write clauses, and run in a transaction
that is always rolled back (see :meth:`GraphClient.read`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from circuits.errors import DefinitionError, PermanentError

__all__ = ["CATALOGUE", "QueryParamError", "Template", "UnknownQueryError", "build_catalogue", "get_template"]


class UnknownQueryError(PermanentError):
    """graph.query was asked for a template that is not in the catalogue."""


class QueryParamError(PermanentError):
    """graph.query got parameters that do not fit the template."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NameParam(_Params):
    name: str = Field(min_length=1, max_length=200)


class NameLimitParam(NameParam):
    limit: int = Field(20, ge=1, le=1000)


class LimitParam(_Params):
    limit: int = Field(20, ge=1, le=1000)


class DealsParam(NameLimitParam):
    stage: str | None = Field(None, pattern="^(Prospecting|Engaging|Won|Lost)$")


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    cypher: str
    params: type[_Params]

    def bind(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validate ``raw`` against the template's parameters; QueryParamError says what is wrong."""
        try:
            return self.params.model_validate(raw).model_dump()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors())
            expected = ", ".join(self.params.model_fields)
            raise QueryParamError(f"graph query {self.name!r}: {problems} (parameters: {expected})") from None


_TEMPLATES = [
    Template(
        "account",
        "One account with its parent and subsidiaries.",
        """
        MATCH (a:Account {name: $name})
        OPTIONAL MATCH (a)-[:SUBSIDIARY_OF]->(p:Account)
        OPTIONAL MATCH (s:Account)-[:SUBSIDIARY_OF]->(a)
        RETURN a.name AS name, a.sector AS sector, a.office_location AS office_location,
               a.year_established AS year_established, a.revenue AS revenue, a.employees AS employees,
               p.name AS parent, collect(s.name) AS subsidiaries""",
        NameParam,
    ),
    Template(
        "subsidiaries",
        "Accounts whose parent company is `name`.",
        """
        MATCH (s:Account)-[:SUBSIDIARY_OF]->(:Account {name: $name})
        RETURN s.name AS name, s.sector AS sector ORDER BY name""",
        NameParam,
    ),
    Template(
        "accounts_in_sector",
        "Accounts of one sector, largest revenue first.",
        """
        MATCH (a:Account {sector: $name})
        RETURN a.name AS name, a.revenue AS revenue, a.office_location AS office_location
        ORDER BY revenue DESC LIMIT $limit""",
        NameLimitParam,
    ),
    Template(
        "account_deals",
        "An account's deals, optionally of one stage, newest first.",
        """
        MATCH (g:Agent)-[:HANDLES]->(d:Deal)-[:FOR_ACCOUNT]->(:Account {name: $name})
        WHERE $stage IS NULL OR d.stage = $stage
        RETURN d.id AS id, d.stage AS stage, d.product AS product, g.name AS agent,
               d.engage_date AS engage_date, d.close_date AS close_date, d.close_value AS close_value
        ORDER BY coalesce(d.close_date, d.engage_date, '') DESC, id LIMIT $limit""",
        DealsParam,
    ),
    Template(
        "agent_team",
        "A sales agent's manager, regional office and teammates.",
        """
        MATCH (g:Agent {name: $name})-[:REPORTS_TO]->(m:Manager)
        OPTIONAL MATCH (g)-[:WORKS_IN]->(o:Office)
        OPTIONAL MATCH (peer:Agent)-[:REPORTS_TO]->(m) WHERE peer <> g
        RETURN g.name AS agent, m.name AS manager, o.name AS office, collect(peer.name) AS teammates""",
        NameParam,
    ),
    Template(
        "agent_accounts",
        "Accounts an agent has worked with, most won value first.",
        """
        MATCH (:Agent {name: $name})-[w:WORKED_WITH]->(a:Account)
        RETURN a.name AS account, w.deals AS deals, w.won AS won, w.lost AS lost, w.won_value AS won_value
        ORDER BY won_value DESC, account LIMIT $limit""",
        NameLimitParam,
    ),
    Template(
        "top_accounts",
        "Accounts by total won deal value.",
        """
        MATCH (:Agent)-[w:WORKED_WITH]->(a:Account)
        WITH a, sum(w.won) AS won, sum(w.won_value) AS won_value
        RETURN a.name AS account, won, won_value ORDER BY won_value DESC, account LIMIT $limit""",
        LimitParam,
    ),
    Template(
        "product_performance",
        "Won deals and won value per product.",
        """
        MATCH (d:Deal)-[:OF_PRODUCT]->(p:Product) WHERE d.stage = 'Won'
        RETURN p.name AS product, p.series AS series, count(d) AS won, sum(d.close_value) AS won_value
        ORDER BY won_value DESC LIMIT $limit""",
        LimitParam,
    ),
    Template(
        "office_agents",
        "Agents of one regional office with their won totals.",
        """
        MATCH (g:Agent)-[:WORKS_IN]->(:Office {name: $name})
        OPTIONAL MATCH (g)-[w:WORKED_WITH]->(:Account)
        RETURN g.name AS agent, coalesce(sum(w.won), 0) AS won, coalesce(sum(w.won_value), 0) AS won_value
        ORDER BY won_value DESC, agent LIMIT $limit""",
        NameLimitParam,
    ),
    Template(
        "deal",
        "One deal by opportunity id.",
        """
        MATCH (d:Deal {id: $name})
        OPTIONAL MATCH (g:Agent)-[:HANDLES]->(d)
        OPTIONAL MATCH (d)-[:FOR_ACCOUNT]->(a:Account)
        RETURN d.id AS id, d.stage AS stage, d.product AS product, g.name AS agent, a.name AS account,
               d.engage_date AS engage_date, d.close_date AS close_date, d.close_value AS close_value""",
        NameParam,
    ),
]

_WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|DROP|LOAD|CALL|FOREACH)\b", re.IGNORECASE)


def build_catalogue(templates: list[Template]) -> dict[str, Template]:
    """Index ``templates`` by name, refusing any that could write (DefinitionError)."""
    catalogue: dict[str, Template] = {}
    for t in templates:
        if _WRITE_CLAUSE.search(t.cypher):
            raise DefinitionError(f"graph query template {t.name!r} contains a write clause; templates are read-only")
        catalogue[t.name] = t
    return catalogue


CATALOGUE: dict[str, Template] = build_catalogue(_TEMPLATES)


def get_template(name: str) -> Template:
    """The template ``name``, or UnknownQueryError listing the known ones."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownQueryError(
            f"unknown graph query {name[:80]!r}; known templates: {', '.join(sorted(CATALOGUE))}"
        ) from None
