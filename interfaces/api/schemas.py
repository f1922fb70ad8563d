"""The shapes of the API's answers (they are the OpenAPI spec's schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, JsonValue

from interfaces.api.errors import Problem


class EventsAccepted(BaseModel):
    """Events handed to ingest (202); ``rejected`` lists batch members kept as dead letters instead."""

    ids: list[str]
    rejected: list[Problem] = []


class RunSummary(BaseModel):
    id: str
    circuit: str | None
    circuit_version: str | None
    tenant: str | None
    event_id: str | None
    event_type: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    parent_run_id: str | None


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as cursor= for the next (older) page; null at the end.")


class Step(BaseModel):
    step_id: str
    action: str | None
    status: str
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None
    output: JsonValue = None
    error: str | None


class RunDetail(RunSummary):
    steps: list[Step]
    children: list[str]


class Retried(BaseModel):
    run_id: str
    circuit: str
    forgotten: list[str] = Field(description="Steps whose outputs were dropped, so they run again.")


class Cancelled(BaseModel):
    run_id: str
    state: str


class RetryRequest(BaseModel):
    from_step: str | None = Field(None, max_length=200, description="Run this step and every one after it again.")


class CircuitInfo(BaseModel):
    name: str
    version: str = Field(description="<number>+<digest>; a deployed circuit's number is its stored version.")
    tenant: str | None = Field(description="null: every tenant")
    enabled: bool
    origin: str = Field(description="file or deployed")
    trigger: str
    when: str | None
    priority: int
    file: str | None


class CircuitList(BaseModel):
    circuits: list[CircuitInfo]


class StoredVersion(BaseModel):
    name: str
    tenant: str | None
    version: int
    digest: str
    created_at: datetime
    created_by: str


class CircuitDetail(CircuitInfo):
    versions: list[StoredVersion]


class GraphNode(BaseModel):
    id: str
    kind: str = Field(description="action, parallel, if, foreach, wait_for or call")
    label: str
    section: str = Field(description="steps or on_failure")
    parent: str | None = Field(description="The block this step is nested in")
    depth: int


class GraphEdge(BaseModel):
    source: str
    target: str
    kind: str = Field(description="next: one step after another; part: a block into its first nested step")
    label: str | None


class CircuitGraph(BaseModel):
    name: str
    nodes: list[GraphNode] = Field(description="Every step, in file order")
    edges: list[GraphEdge]


class RunEvent(BaseModel):
    id: str
    tenant: str
    type: str
    source: str
    subject: str | None
    time: datetime
    received_at: datetime
    data: JsonValue = None


class Validation(BaseModel):
    valid: bool
    problems: list[Problem]


class Deployed(BaseModel):
    name: str
    version: int
    tenant: str | None
    digest: str


class Enabled(BaseModel):
    name: str
    enabled: bool


class DeadLetter(BaseModel):
    id: int
    received_at: datetime
    origin: str
    field: str | None
    error: str
    raw: str
    tenant: str | None


class DeadLetters(BaseModel):
    rejected: list[DeadLetter]


class KeyRequest(BaseModel):
    role: str = Field(pattern="^(admin|author|operator|producer|viewer)$")
    tenant: str | None = Field(None, pattern=r"^(\*|[A-Za-z0-9_.-]{1,100})$", description="Default: the caller's.")
    name: str | None = Field(None, max_length=200)


class KeyInfo(BaseModel):
    id: str
    tenant: str
    role: str
    name: str | None
    created_at: datetime | None = None
    created_by: str | None = None
    revoked_at: datetime | None = None


class KeyCreated(KeyInfo):
    key: str = Field(description="The key itself: shown this once, stored only hashed.")


class KeyList(BaseModel):
    keys: list[KeyInfo]


class AuditEntry(BaseModel):
    id: int
    at: datetime
    tenant: str | None
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any] | None


class AuditLog(BaseModel):
    entries: list[AuditEntry]


class Health(BaseModel):
    status: str
    redis: str | None = None
    database: str | None = None
