"""The ``data.*`` actions: SOQL/DML for circuits, on the ``data`` queue.

Each action is one transaction on the engine from ``ctx.resource("db", ...)``
(``CIRCUIT_DATABASE_URL``, the ledger's database). Writes act for the tenant of the
run's event and stage their events in the outbox in the same transaction; the events
carry the run's chain depth plus one and its chain of circuits plus this circuit.
Database outages are retryable; bad objects, fields, ops and values are permanent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from sqlalchemy.engine import Engine

from circuits.actions import ActionContext, action
from circuits.errors import PermanentError, RetryableError
from integrations.records.outbox import Origin
from integrations.records.query import Filter
from integrations.records.store import Store, Write, writing
from storage.base import make_engine

__all__ = [
    "BulkOutput",
    "QueryInput",
    "QueryOutput",
    "RecordOutput",
    "create",
    "create_many",
    "delete",
    "delete_many",
    "get",
    "query",
    "update",
    "update_many",
    "upsert",
    "upsert_many",
]

T = TypeVar("T")
DEFAULT_LIMIT = 100
_DEFAULTS = {"records_query_max_limit": 1000, "records_bulk_max": 1000, "records_custom_max_bytes": 16384}


def _setting(ctx: ActionContext, name: str) -> int:
    return int(getattr(ctx.settings, name, _DEFAULTS[name]))


def engine_of(ctx: ActionContext) -> Engine:
    """The process's engine on CIRCUIT_DATABASE_URL (built once per worker process)."""
    return ctx.resource("db", lambda: make_engine(ctx.settings.database_url))


def _tenant(ctx: ActionContext) -> str:
    return str(ctx.event.get("tenant") or "default")


@contextmanager
def _db_errors() -> Iterator[None]:
    """Driver errors in our terms: a lost connection is retried, a conflict retried once more."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise RetryableError(f"a concurrent write conflicted ({type(exc.orig).__name__}); retrying") from None
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise RetryableError(f"database unavailable: {type(exc.orig).__name__}") from None
    except sa.exc.ProgrammingError as exc:
        raise PermanentError(f"database refused the statement: {str(exc.orig)[:300]}") from None


def _write(ctx: ActionContext, fn: Callable[[Store], T]) -> T:
    origin = Origin.of_step(ctx.run_id, ctx.step_id, ctx.circuit, ctx.event)
    with _db_errors(), writing(engine_of(ctx), _tenant(ctx), origin, _setting(ctx, "records_custom_max_bytes")) as s:
        return fn(s)


def _read(ctx: ActionContext, fn: Callable[[Store], T]) -> T:
    with _db_errors(), engine_of(ctx).connect() as conn:
        return fn(Store(conn, _tenant(ctx)))


def _bounded(ctx: ActionContext, items: list[Any], what: str) -> None:
    cap = _setting(ctx, "records_bulk_max")
    if len(items) > cap:
        raise PermanentError(f"{what}: {len(items)} records, over CIRCUIT_RECORDS_BULK_MAX={cap}")


class RecordRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    id: str | None = None
    external_id: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> RecordRef:
        if (self.id is None) == (self.external_id is None):
            raise ValueError("give exactly one of id and external_id")
        return self


# --- reading ---------------------------------------------------------------------------------


class QueryInput(BaseModel):
    """``{object: lead, filters: [{field: score, op: ge, value: 80}], sort: ["-score"], limit: 10}``."""

    model_config = ConfigDict(extra="forbid")

    object: str
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    where: dict[str, JsonValue] = Field(default_factory=dict, description="Shorthand for eq filters.")
    sort: list[str] = Field(default_factory=list, max_length=5)
    limit: int | None = Field(None, ge=1, description="Default 100, at most CIRCUIT_RECORDS_QUERY_MAX_LIMIT.")
    offset: int = Field(0, ge=0, le=100_000)


class QueryOutput(BaseModel):
    records: list[dict[str, Any]]
    count: int
    has_more: bool


@action("data.query", queue="data", retries=3, timeout_s=30)
def query(ctx: ActionContext, inp: QueryInput) -> QueryOutput:
    """Find records by filters over allow-listed fields; always parameterized, limit capped."""
    cap = _setting(ctx, "records_query_max_limit")
    limit = min(DEFAULT_LIMIT, cap) if inp.limit is None else inp.limit
    if limit > cap:
        raise PermanentError(f"limit {limit} is over CIRCUIT_RECORDS_QUERY_MAX_LIMIT={cap}")
    filters = [*inp.filters, *(Filter(field=k, op="eq", value=v) for k, v in inp.where.items())]
    records, more = _read(ctx, lambda s: s.query(inp.object, filters, inp.sort, limit, inp.offset))
    return QueryOutput(records=records, count=len(records), has_more=more)


class GetOutput(BaseModel):
    found: bool
    record: dict[str, Any] | None = None


@action("data.get", queue="data", retries=3, timeout_s=30)
def get(ctx: ActionContext, inp: RecordRef) -> GetOutput:
    """One record by id or external id; ``found`` is false when there is none."""
    record = _read(ctx, lambda s: s.get(inp.object, id=inp.id, external_id=inp.external_id))
    return GetOutput(found=record is not None, record=record)


# --- writing one -----------------------------------------------------------------------------


class RecordOutput(BaseModel):
    op: str
    id: str | None
    record: dict[str, Any] | None = None
    changed: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _out(w: Write) -> RecordOutput:
    return RecordOutput(op=w.op, id=w.id, record=w.record, changed=w.changed)


class CreateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    values: dict[str, JsonValue]


@action("data.create", queue="data", retries=3, timeout_s=30)
def create(ctx: ActionContext, inp: CreateInput) -> RecordOutput:
    """Create one record; emits ``<object>.created``."""
    return _out(_write(ctx, lambda s: s.create(inp.object, inp.values)))


class UpdateInput(RecordRef):
    set: dict[str, JsonValue] = Field(min_length=1)


@action("data.update", queue="data", retries=3, timeout_s=30)
def update(ctx: ActionContext, inp: UpdateInput) -> RecordOutput:
    """Change fields of one record; emits ``<object>.updated`` with ``changed`` (nothing if nothing changed)."""
    return _out(_write(ctx, lambda s: s.update(inp.object, inp.set, id=inp.id, external_id=inp.external_id)))


class UpsertInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    external_id: str = Field(min_length=1, max_length=200)
    values: dict[str, JsonValue] = Field(default_factory=dict)


@action("data.upsert", queue="data", retries=3, timeout_s=30)
def upsert(ctx: ActionContext, inp: UpsertInput) -> RecordOutput:
    """Update the record with this external id, or create it."""
    return _out(_write(ctx, lambda s: s.upsert(inp.object, inp.external_id, inp.values)))


@action("data.delete", queue="data", retries=3, timeout_s=30)
def delete(ctx: ActionContext, inp: RecordRef) -> RecordOutput:
    """Delete one record; emits ``<object>.deleted``. A record already gone is ``missing``, not an error."""
    return _out(_write(ctx, lambda s: s.delete(inp.object, id=inp.id, external_id=inp.external_id)))


# --- writing many, in one transaction ----------------------------------------------------------


class BulkOutput(BaseModel):
    ids: list[str | None]
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: int = 0


def _bulk(writes: list[Write]) -> BulkOutput:
    out = BulkOutput(ids=[w.id for w in writes])
    for w in writes:
        setattr(out, w.op, getattr(out, w.op) + 1)
    return out


class CreateManyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    records: list[dict[str, JsonValue]]


@action("data.create_many", queue="data", retries=3, timeout_s=120)
def create_many(ctx: ActionContext, inp: CreateManyInput) -> BulkOutput:
    """Create records, all or none (at most CIRCUIT_RECORDS_BULK_MAX)."""
    _bounded(ctx, inp.records, "data.create_many")
    return _bulk(_write(ctx, lambda s: [s.create(inp.object, r, i) for i, r in enumerate(inp.records)]))


class UpdateItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    external_id: str | None = None
    set: dict[str, JsonValue] = Field(min_length=1)


class UpdateManyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    updates: list[UpdateItem]


@action("data.update_many", queue="data", retries=3, timeout_s=120)
def update_many(ctx: ActionContext, inp: UpdateManyInput) -> BulkOutput:
    """Update records by id or external id, all or none."""
    _bounded(ctx, inp.updates, "data.update_many")

    def go(s: Store) -> list[Write]:
        updates = enumerate(inp.updates)
        return [s.update(inp.object, u.set, id=u.id, external_id=u.external_id, index=i) for i, u in updates]

    return _bulk(_write(ctx, go))


class UpsertManyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    records: list[dict[str, JsonValue]] = Field(description="Each with its external_id.")


def upsert_all(s: Store, obj: str, records: list[dict[str, Any]]) -> list[Write]:
    """Upsert each record by its ``external_id`` (shared by data.upsert_many and the CSV import)."""
    writes = []
    for i, record in enumerate(records):
        ext = record.get("external_id")
        if not isinstance(ext, str) or not ext:
            raise PermanentError(f"record {i}: upsert needs an external_id")
        writes.append(s.upsert(obj, ext, {k: v for k, v in record.items() if k != "external_id"}, i))
    return writes


@action("data.upsert_many", queue="data", retries=3, timeout_s=120)
def upsert_many(ctx: ActionContext, inp: UpsertManyInput) -> BulkOutput:
    """Upsert records by external id, all or none."""
    _bounded(ctx, inp.records, "data.upsert_many")
    return _bulk(_write(ctx, lambda s: upsert_all(s, inp.object, inp.records)))


class DeleteManyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: str
    ids: list[str] = Field(default_factory=list)
    external_ids: list[str] = Field(default_factory=list)


@action("data.delete_many", queue="data", retries=3, timeout_s=120)
def delete_many(ctx: ActionContext, inp: DeleteManyInput) -> BulkOutput:
    """Delete records by ids and external ids, all or none; those already gone count as missing."""
    _bounded(ctx, [*inp.ids, *inp.external_ids], "data.delete_many")

    def go(s: Store) -> list[Write]:
        writes = [s.delete(inp.object, id=rid, index=i) for i, rid in enumerate(inp.ids)]
        n = len(writes)
        return writes + [s.delete(inp.object, external_id=e, index=n + i) for i, e in enumerate(inp.external_ids)]

    return _bulk(_write(ctx, go))
