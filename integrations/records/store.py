"""Reads and writes of records for one tenant, each write staging its event in the outbox.

:class:`Store` works on a connection inside the caller's transaction; :func:`writing`
opens that transaction, and after the commit relays the staged events (see
:mod:`integrations.records.outbox`). A write that changes nothing writes nothing and
emits nothing, so a circuit that sets a field to the value it has does not trigger again.

Writes made by a run's step are idempotent on (run id, step id): a created record's id
derives from them, so a retried ``create`` finds its record instead of adding a second.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from circuits.errors import PermanentError
from integrations.records import outbox
from integrations.records.outbox import Origin
from integrations.records.query import Filter, order_by, where
from integrations.records.schema import ObjectSpec, object_spec, table_of
from integrations.records.values import (
    CUSTOM_PREFIX,
    check_custom,
    coerce,
    custom_name,
    row_to_record,
    to_json,
    unknown_field,
    utc,
)

__all__ = ["Store", "Write", "writing"]

RECORD_NAMESPACE = uuid.UUID("0b8f5a2e-6f47-4d0e-9f86-7c1d2a3b4e5f")
_SET_BY_STORE = ("id", "tenant", "created_at", "updated_at", "object")


@dataclass
class Write:
    """What one write did: ``created``, ``updated``, ``unchanged``, ``deleted`` or ``missing``."""

    op: str
    object: str
    id: str | None
    record: dict[str, Any] | None = None
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Values:
    std: dict[str, Any]
    custom: dict[str, Any]  # None means: remove the key


class Store:
    """One tenant's records on ``conn``; events of its writes collect in :attr:`events`."""

    def __init__(
        self, conn: Connection, tenant: str = "default", origin: Origin | None = None, custom_max_bytes: int = 16384
    ) -> None:
        self.conn = conn
        self.tenant = tenant
        self.origin = origin or Origin()
        self.custom_max_bytes = custom_max_bytes
        self.events: list[dict[str, Any]] = []

    # --- reading -----------------------------------------------------------------------

    def _select(self, spec: ObjectSpec, *, id: str | None, external_id: str | None, lock: bool) -> Any:
        if (id is None) == (external_id is None):
            raise PermanentError(f"{spec.name}: give exactly one of id and external_id")
        table = table_of(spec.name)
        key = table.c.id == id if id is not None else table.c.external_id == external_id
        stmt = sa.select(table).where(table.c.tenant == self.tenant, key)
        return self.conn.execute(stmt.with_for_update() if lock else stmt).first()

    def get(self, obj: str, *, id: str | None = None, external_id: str | None = None) -> dict[str, Any] | None:
        spec = object_spec(obj)
        row = self._select(spec, id=id, external_id=external_id, lock=False)
        return None if row is None else row_to_record(spec, row._mapping)

    def query(
        self, obj: str, filters: list[Filter], sort: list[str], limit: int, offset: int = 0
    ) -> tuple[list[dict[str, Any]], bool]:
        """Matching records (at most ``limit``) and whether there are more."""
        spec = object_spec(obj)
        table = table_of(obj)
        stmt = (
            sa.select(table)
            .where(table.c.tenant == self.tenant, *where(spec, table, filters, self.conn.dialect.name))
            .order_by(*order_by(spec, table, sort))
            .limit(limit + 1)
            .offset(offset)
        )
        rows = self.conn.execute(stmt).fetchall()
        return [row_to_record(spec, r._mapping) for r in rows[:limit]], len(rows) > limit

    # --- writing -----------------------------------------------------------------------

    def _split(self, spec: ObjectSpec, values: Mapping[str, Any]) -> _Values:
        out = _Values({}, {})
        for key, value in values.items():
            if key == "custom":
                if not isinstance(value, dict):
                    raise PermanentError(f"{spec.name}.custom: expected an object of custom fields")
                out.custom.update({custom_name(spec, k): v for k, v in value.items()})
            elif key.startswith(CUSTOM_PREFIX):
                out.custom[custom_name(spec, key[len(CUSTOM_PREFIX) :])] = value
            elif key in _SET_BY_STORE:
                raise PermanentError(f"{spec.name}.{key} is set by the store, not by a write")
            elif key == "external_id":
                out.std[key] = coerce("str", value, f"{spec.name}.external_id", 200)
            else:
                f = spec.field(key)
                if f is None:
                    raise unknown_field(spec, key)
                out.std[key] = coerce(f.kind, value, f"{spec.name}.{key}", f.length)
        return out

    def _record_id(self, obj: str, index: int) -> str:
        o = self.origin
        if o.run_id is None:
            return str(uuid.uuid4())
        return str(uuid.uuid5(RECORD_NAMESPACE, f"{self.tenant}/{o.run_id}/{o.step_id}/{obj}/{index}"))

    def _emit(self, spec: ObjectSpec, op: str, record: dict[str, Any], index: int, **extra: Any) -> None:
        if not self.origin.emit:
            return
        data = {"object": spec.name, "op": op, "id": record["id"], "external_id": record["external_id"], **extra}
        data["record"] = record
        event = outbox.envelope(self.origin, self.tenant, spec.name, op, record["id"], data, index)
        if outbox.stage(self.conn, [event]):  # 0: a retried step staged this event already
            self.events.append(event)

    def _taken(self, spec: ObjectSpec, external_id: str | None, but: str | None = None) -> None:
        if external_id is None:
            return
        row = self._select(spec, id=None, external_id=external_id, lock=False)
        if row is not None and row.id != but:
            raise PermanentError(f"a {spec.name} with external_id {external_id!r} exists already (id {row.id})")

    def create(self, obj: str, values: Mapping[str, Any], index: int = 0) -> Write:
        """Insert one record; a step's retried create returns the record it made the first time."""
        spec = object_spec(obj)
        vals = self._split(spec, values)
        record_id = self._record_id(obj, index)
        if self.origin.run_id is not None:
            again = self._select(spec, id=record_id, external_id=None, lock=False)
            if again is not None:
                return Write("unchanged", obj, record_id, row_to_record(spec, again._mapping))
        self._taken(spec, vals.std.get("external_id"))
        custom = {k: v for k, v in vals.custom.items() if v is not None}
        check_custom(spec, custom, self.custom_max_bytes)
        now = datetime.now(UTC)
        row: dict[str, Any] = {name: None for name in spec.field_names} | {"external_id": None}
        row |= vals.std | {"id": record_id, "tenant": self.tenant, "custom": custom, "created_at": now}
        row["updated_at"] = now
        self.conn.execute(sa.insert(table_of(obj)).values(**row))
        record = row_to_record(spec, row)
        self._emit(spec, "created", record, index)
        return Write("created", obj, record_id, record)

    def _changes(self, spec: ObjectSpec, row: Mapping[str, Any], vals: _Values) -> tuple[dict[str, Any], Any]:
        changed: dict[str, dict[str, Any]] = {}
        for key, new in vals.std.items():
            old = utc(row[key]) if isinstance(row[key], datetime) else row[key]  # SQLite keeps no zone
            if old != new:
                changed[key] = {"old": to_json(old), "new": to_json(new)}
        custom = dict(row["custom"] or {})
        for key, new in vals.custom.items():
            old = custom.get(key)
            if old != new or (new is None and key in custom):
                changed[f"{CUSTOM_PREFIX}{key}"] = {"old": old, "new": new}
            if new is None:
                custom.pop(key, None)
            else:
                custom[key] = new
        return changed, custom

    def update(
        self,
        obj: str,
        changes: Mapping[str, Any],
        *,
        id: str | None = None,
        external_id: str | None = None,
        index: int = 0,
    ) -> Write:
        """Change fields of one record; ``lead.updated`` carries ``changed: {field: {old, new}}``."""
        spec = object_spec(obj)
        vals = self._split(spec, changes)
        row = self._select(spec, id=id, external_id=external_id, lock=True)
        if row is None:
            raise PermanentError(f"no {obj} with {'id' if id is not None else 'external_id'} {id or external_id!r}")
        return self._update_row(spec, row._mapping, vals, index)

    def _update_row(self, spec: ObjectSpec, row: Mapping[str, Any], vals: _Values, index: int) -> Write:
        changed, custom = self._changes(spec, row, vals)
        if not changed:
            return Write("unchanged", spec.name, row["id"], row_to_record(spec, row))
        if "external_id" in changed:
            self._taken(spec, vals.std["external_id"], but=row["id"])
        check_custom(spec, custom, self.custom_max_bytes)
        sets = {k: v for k, v in vals.std.items() if k in changed}
        sets |= {"custom": custom, "updated_at": datetime.now(UTC)}
        table = table_of(spec.name)
        self.conn.execute(sa.update(table).where(table.c.id == row["id"]).values(**sets))
        record = row_to_record(spec, {**row, **sets})
        self._emit(spec, "updated", record, index, changed=changed)
        return Write("updated", spec.name, row["id"], record, changed)

    def upsert(self, obj: str, external_id: str, values: Mapping[str, Any], index: int = 0) -> Write:
        """Update the record with ``external_id``, or create it."""
        spec = object_spec(obj)
        values = {**values, "external_id": external_id}
        vals = self._split(spec, values)
        row = self._select(spec, id=None, external_id=vals.std["external_id"], lock=True)
        if row is None:
            return self.create(obj, values, index)
        return self._update_row(spec, row._mapping, vals, index)

    def delete(self, obj: str, *, id: str | None = None, external_id: str | None = None, index: int = 0) -> Write:
        """Delete one record; one that is not there is ``missing`` (a retried delete finds it gone)."""
        spec = object_spec(obj)
        row = self._select(spec, id=id, external_id=external_id, lock=True)
        if row is None:
            return Write("missing", obj, id)
        table = table_of(obj)
        self.conn.execute(sa.delete(table).where(table.c.id == row.id))
        record = row_to_record(spec, row._mapping)
        self._emit(spec, "deleted", record, index)
        return Write("deleted", obj, row.id, record)


@contextmanager
def writing(
    engine: Engine, tenant: str = "default", origin: Origin | None = None, custom_max_bytes: int = 16384
) -> Iterator[Store]:
    """A :class:`Store` in one transaction; after the commit its events are relayed.

    An exception inside rolls the writes and their events back together.
    """
    with engine.begin() as conn:
        store = Store(conn, tenant, origin, custom_max_bytes)
        yield store
    outbox.relay(engine, store.events)
