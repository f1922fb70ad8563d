"""The CRM objects as SQL tables: one spec per object, one table built from each spec.

The spec is the single source of truth for what a circuit may read or write: its
standard fields are the allow-list of :mod:`integrations.records.query` and of writes.
Every table has ``id``, ``tenant``, ``external_id`` (unique per tenant), the typed
standard fields, a JSON ``custom`` column for free-form fields, and timestamps.
The migration ``0020_records`` spells the same columns out (a migration must not
change when this module does); ``tests/integrations/test_records.py`` checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from circuits.errors import PermanentError
from storage.base import Base

__all__ = ["META_FIELDS", "OBJECTS", "OUTBOX", "TABLES", "FieldSpec", "ObjectSpec", "object_spec", "table_of"]

Kind = Literal["str", "text", "int", "float", "bool", "date", "datetime"]
TS = sa.DateTime(timezone=True)


@dataclass(frozen=True)
class FieldSpec:
    """One standard field: its name, its kind and, for text, its longest value."""

    name: str
    kind: Kind = "str"
    length: int = 200

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        types: dict[str, sa.types.TypeEngine[Any]] = {
            "str": sa.String(self.length),
            "text": sa.Text(),
            "int": sa.BigInteger(),
            "float": sa.Float(),
            "bool": sa.Boolean(),
            "date": sa.Date(),
            "datetime": TS,
        }
        return types[self.kind]


@dataclass(frozen=True)
class ObjectSpec:
    """One CRM object (``lead``) and the table that holds it (``crm_leads``)."""

    name: str
    table: str
    fields: tuple[FieldSpec, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


def _f(name: str, kind: Kind = "str", length: int = 200) -> FieldSpec:
    return FieldSpec(name, kind, length)


_PERSON = (_f("email", length=320), _f("first_name", length=100), _f("last_name", length=100))

OBJECTS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec(
            "lead",
            "crm_leads",
            (
                *_PERSON,
                _f("company"),
                _f("title"),
                _f("phone", length=50),
                _f("status", length=50),
                _f("score", "float"),
                _f("source", length=100),
                _f("owner"),
            ),
        ),
        ObjectSpec(
            "account",
            "crm_accounts",
            (
                _f("name"),
                _f("domain"),
                _f("industry", length=100),
                _f("employees", "int"),
                _f("annual_revenue", "float"),
                _f("phone", length=50),
                _f("owner"),
            ),
        ),
        ObjectSpec(
            "contact",
            "crm_contacts",
            (_f("account_id", length=64), *_PERSON, _f("title"), _f("phone", length=50), _f("owner")),
        ),
        ObjectSpec(
            "opportunity",
            "crm_opportunities",
            (
                _f("account_id", length=64),
                _f("name"),
                _f("stage", length=50),
                _f("amount", "float"),
                _f("probability", "float"),
                _f("close_date", "date"),
                _f("owner"),
            ),
        ),
        ObjectSpec(
            "activity",
            "crm_activities",
            (
                _f("kind", length=50),
                _f("subject", length=500),
                _f("status", length=50),
                _f("due_at", "datetime"),
                _f("related_object", length=50),
                _f("related_id", length=64),
                _f("owner"),
                _f("notes", "text"),
            ),
        ),
    )
}

#: Fields every object has besides its standard ones; readable in filters and sorts, not settable
#: (except ``external_id``).
META_FIELDS: dict[str, Kind] = {"id": "str", "external_id": "str", "created_at": "datetime", "updated_at": "datetime"}


def _table(spec: ObjectSpec) -> sa.Table:
    return sa.Table(
        spec.table,
        Base.metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("external_id", sa.String(200)),
        *(sa.Column(f.name, f.sql_type()) for f in spec.fields),
        sa.Column("custom", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant", "external_id", name=f"uq_{spec.table}_external_id"),
    )


TABLES: dict[str, sa.Table] = {name: _table(spec) for name, spec in OBJECTS.items()}

#: Record events waiting to be published, written in the same transaction as the write.
OUTBOX = sa.Table(
    "crm_outbox",
    Base.metadata,
    sa.Column("id", sa.String(200), primary_key=True),  # the event id: a repeated write finds it taken
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(500)),
    sa.Column("envelope", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.Index("ix_crm_outbox_unsent", "sent_at", "created_at"),
)


def object_spec(name: str) -> ObjectSpec:
    """The spec of ``name``, or a PermanentError listing the objects there are."""
    spec = OBJECTS.get(name)
    if spec is None:
        raise PermanentError(f"unknown object {name!r}; use one of {', '.join(OBJECTS)}")
    return spec


def table_of(name: str) -> sa.Table:
    object_spec(name)
    return TABLES[name]
