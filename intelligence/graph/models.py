"""Typed inputs and outputs of the graph actions (pydantic, JSON-able)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from intelligence.graph.schema import LABELS, RELATIONSHIPS, check_property_name

__all__ = [
    "NodeRef",
    "NodeIn",
    "RelIn",
    "UpsertInput",
    "UpsertOutput",
    "RelatedInput",
    "RelatedAccount",
    "IntroStep",
    "IntroPath",
    "RelatedOutput",
    "QueryInput",
    "QueryOutput",
]

Scalar = str | int | float | bool | None
PropValue = Scalar | list[str] | list[int] | list[float]


def _check_props(props: dict[str, Any]) -> dict[str, Any]:
    bad = [k for k in props if not check_property_name(k)]
    if bad:
        raise ValueError(f"property names must be identifiers (letters, digits, _): {bad}")
    return props


class NodeRef(BaseModel):
    """A node named by its label and key value, e.g. ``{"label": "Account", "key": "Cancity"}``."""

    label: str
    key: str | int

    @field_validator("label")
    @classmethod
    def _known_label(cls, value: str) -> str:
        if value not in LABELS:
            raise ValueError(f"unknown label {value!r}; known: {', '.join(LABELS)}")
        return value


class NodeIn(NodeRef):
    """A node to merge on (label, key) with properties to set."""

    props: dict[str, PropValue] = Field(default_factory=dict)

    _props_ok = field_validator("props")(classmethod(lambda cls, v: _check_props(v)))


class RelIn(BaseModel):
    """A relationship to merge between two nodes (created as stubs if missing)."""

    type: str
    start: NodeRef
    end: NodeRef
    props: dict[str, PropValue] = Field(default_factory=dict)

    _props_ok = field_validator("props")(classmethod(lambda cls, v: _check_props(v)))

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in RELATIONSHIPS:
            raise ValueError(f"unknown relationship type {value!r}; known: {', '.join(RELATIONSHIPS)}")
        return value

    @model_validator(mode="after")
    def _endpoints_fit(self) -> RelIn:
        rel = RELATIONSHIPS[self.type]
        if (self.start.label, self.end.label) != (rel.start, rel.end):
            raise ValueError(f"{rel.name} joins {rel.start} to {rel.end}, not {self.start.label} to {self.end.label}")
        return self


class UpsertInput(BaseModel):
    nodes: list[NodeIn] = Field(default_factory=list, max_length=10_000)
    relationships: list[RelIn] = Field(default_factory=list, max_length=10_000)


class UpsertOutput(BaseModel):
    nodes: int = Field(description="Nodes merged (existing or new).")
    relationships: int = Field(description="Relationships merged (existing or new).")
    nodes_created: int
    relationships_created: int


class RelatedInput(BaseModel):
    """A lead's company; the hints are used when the company is not in the graph yet."""

    company: str = Field(min_length=1, max_length=200)
    sector: str | None = None
    office_location: str | None = None
    subsidiary_of: str | None = None
    limit: int = Field(10, ge=1, le=100)


class RelatedAccount(BaseModel):
    name: str
    score: float
    reasons: list[str]
    sector: str | None = None
    office_location: str | None = None
    shared_agents: list[str] = Field(default_factory=list)


class IntroStep(BaseModel):
    """One hop of a path: a node, and the relationship that leads to the next one."""

    label: str
    name: str
    via: str | None = Field(None, description="How this node connects to the next one.")


class IntroPath(BaseModel):
    target: str
    agent: str
    score: float
    steps: list[IntroStep]
    explanation: str


class RelatedOutput(BaseModel):
    company: str
    found: bool = Field(description="False when the company is not in the graph and only the hints were used.")
    accounts: list[RelatedAccount]
    intro_paths: list[IntroPath]


class QueryInput(BaseModel):
    name: str = Field(description="A template name from the catalogue (see graph query --list).")
    params: dict[str, Any] = Field(default_factory=dict)


class QueryOutput(BaseModel):
    name: str
    rows: list[dict[str, Any]]
