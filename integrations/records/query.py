"""Filters and sorts over an allow-list, compiled to SQLAlchemy expressions: never SQL text.

A filter is ``{field, op, value}``. ``field`` is a standard field of the object, a meta
field (``id``, ``external_id``, ``created_at``, ``updated_at``) or ``custom.<name>``;
anything else is refused with the allowed list. Every value travels as a bound
parameter, so ``"x'; DROP TABLE crm_leads; --"`` is just text to compare with.

Custom fields are filtered in SQL through the JSON path both dialects have
(``->``/``->>`` on PostgreSQL, ``json_extract`` on SQLite). The comparison is typed by
the value: a number compares with numbers only, text with text, a boolean with
booleans. The JSON type is tested in a ``CASE`` first, so a custom field that holds
text where others hold numbers never makes PostgreSQL's cast fail: the row just does
not match. Sorting is on standard and meta fields only.

``contains`` is a case-insensitive substring match (``ILIKE`` on PostgreSQL,
``lower() LIKE`` on SQLite, with ``%`` and ``_`` escaped). ``ne`` keeps rows where the
field is empty (``IS DISTINCT FROM``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, JsonValue

from circuits.errors import PermanentError
from integrations.records.schema import ObjectSpec
from integrations.records.values import CUSTOM_PREFIX, coerce, custom_name, field_kind

__all__ = ["IN_MAX", "OPS", "Filter", "order_by", "where"]

OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null")
_ORDERED = {"lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}
IN_MAX = 1000

# JSON type names, as each dialect's type function spells them
_JSON_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "postgresql": {"str": ("string",), "num": ("number",), "bool": ("boolean",)},
    "sqlite": {"str": ("text",), "num": ("integer", "real"), "bool": ("true", "false")},
}


class Filter(BaseModel):
    """One condition: ``{field: status, op: eq, value: hot}``."""

    model_config = ConfigDict(extra="forbid")

    field: str
    op: str = "eq"
    value: JsonValue = None


def _check_op(op: str) -> None:
    if op not in OPS:
        raise PermanentError(f"unknown filter op {op!r}; use one of {', '.join(OPS)}")


def _compare(col: Any, op: str, value: Any, where: str) -> sa.ColumnElement[bool]:
    if op == "eq":
        return col == value  # type: ignore[no-any-return]
    if op == "ne":
        return col.is_distinct_from(value)  # type: ignore[no-any-return]
    if op in _ORDERED:
        return getattr(col, _ORDERED[op])(value)  # type: ignore[no-any-return]
    if op == "in":
        return col.in_(value)  # type: ignore[no-any-return]
    if op == "contains":
        return col.icontains(value, autoescape=True)  # type: ignore[no-any-return]
    raise PermanentError(f"{where}: unknown filter op {op!r}")  # pragma: no cover - checked before


def _values(f: Filter, where: str) -> list[Any]:
    """The operands of one filter: one value, or the list of ``in``."""
    if f.op == "in":
        if not isinstance(f.value, list):
            raise PermanentError(f"{where}: 'in' takes a list of values")
        if len(f.value) > IN_MAX:
            raise PermanentError(f"{where}: 'in' takes at most {IN_MAX} values, got {len(f.value)}")
        return list(f.value)
    if f.value is None:
        raise PermanentError(f"{where}: {f.op!r} needs a value (use is_null to find empty fields)")
    return [f.value]


def _standard(spec: ObjectSpec, table: sa.Table, f: Filter, where: str) -> sa.ColumnElement[bool]:
    kind, _ = field_kind(spec, f.field)
    col = table.c[f.field]
    if f.op in _ORDERED and kind == "bool":
        raise PermanentError(f"{where}: {f.op!r} does not apply to a true/false field")
    if f.op == "contains" and kind not in ("str", "text"):
        raise PermanentError(f"{where}: 'contains' applies to text fields only")
    values = [coerce(kind, v, where, 10_000) for v in _values(f, where)]
    return _compare(col, f.op, values if f.op == "in" else values[0], where)


def _json_kind(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    raise PermanentError(f"{where}: custom fields compare with text, numbers or true/false, not {type(value).__name__}")


def _custom(spec: ObjectSpec, table: sa.Table, f: Filter, dialect: str, where: str) -> sa.ColumnElement[bool]:
    name = custom_name(spec, f.field[len(CUSTOM_PREFIX) :])
    custom: Any = table.c.custom
    if f.op == "is_null":
        return _is_null(custom[name].as_string(), f, where)
    values = _values(f, where)
    kinds = {_json_kind(v, where) for v in values} or {"str"}
    if len(kinds) > 1:
        raise PermanentError(f"{where}: the values of 'in' must all be text, all numbers or all true/false")
    kind = kinds.pop()
    if f.op == "contains" and kind != "str":
        raise PermanentError(f"{where}: 'contains' compares with text")
    if f.op in _ORDERED and kind == "bool":
        raise PermanentError(f"{where}: {f.op!r} does not apply to true/false")
    names = _JSON_KINDS.get(dialect)
    if names is None:
        raise PermanentError(f"{where}: custom fields cannot be filtered on a {dialect} database")
    typeof = sa.func.json_typeof(custom[name]) if dialect == "postgresql" else sa.func.json_type(custom, f'$."{name}"')
    typed = {"str": custom[name].as_string(), "num": custom[name].as_float(), "bool": custom[name].as_boolean()}[kind]
    guarded = sa.case((typeof.in_(names[kind]), typed), else_=sa.null())
    return _compare(guarded, f.op, values if f.op == "in" else values[0], where)


def _is_null(col: Any, f: Filter, where: str) -> sa.ColumnElement[bool]:
    want = True if f.value is None else f.value
    if not isinstance(want, bool):
        raise PermanentError(f"{where}: is_null takes true or false")
    return col.is_(None) if want else col.is_not(None)  # type: ignore[no-any-return]


def where(spec: ObjectSpec, table: sa.Table, filters: list[Filter], dialect: str) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions of ``filters`` (ANDed by the caller)."""
    clauses = []
    for i, f in enumerate(filters):
        where_ = f"filter {i} ({spec.name}.{f.field} {f.op})"
        _check_op(f.op)
        if f.field.startswith(CUSTOM_PREFIX):
            clauses.append(_custom(spec, table, f, dialect, where_))
        elif f.op == "is_null":
            field_kind(spec, f.field)
            clauses.append(_is_null(table.c[f.field], f, where_))
        else:
            clauses.append(_standard(spec, table, f, where_))
    return clauses


def order_by(spec: ObjectSpec, table: sa.Table, sort: list[str]) -> list[Any]:
    """``["-score", "last_name"]``: descending with a leading minus; ``id`` breaks ties."""
    keys: list[Any] = []
    for item in sort:
        name = item.lstrip("-+")
        if name.startswith(CUSTOM_PREFIX):
            raise PermanentError(f"sort by {name!r}: sorting is on standard fields only")
        field_kind(spec, name)
        col = table.c[name]
        keys.append(col.desc().nulls_last() if item.startswith("-") else col.asc().nulls_last())
    return [*keys, table.c.id.asc()]
