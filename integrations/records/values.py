"""Values in and out: JSON from circuits to typed columns, rows back to JSON.

Every value a circuit hands us is checked against the field's kind here, so a
wrong value is a PermanentError naming ``object.field``, never a driver error.
Datetimes are stored in UTC (SQLite keeps no zone; comparing needs one convention).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from circuits.errors import PermanentError
from integrations.records.schema import META_FIELDS, Kind, ObjectSpec

CUSTOM_PREFIX = "custom."
CUSTOM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
TEXT_MAX = 20_000
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _number(value: Any, where: str, kind: Kind) -> int | float:
    if isinstance(value, str):
        try:
            value = float(value) if kind == "float" or not value.strip().lstrip("-").isdigit() else int(value)
        except ValueError:
            raise PermanentError(f"{where}: {value[:50]!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PermanentError(f"{where}: expected a number, got {type(value).__name__} {str(value)[:50]}")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise PermanentError(f"{where}: expected a whole number, got {value}")
        return int(value)
    return float(value)


def _text(value: Any, where: str, limit: int) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PermanentError(f"{where}: expected text, got {type(value).__name__}")
    if len(value) > limit:
        raise PermanentError(f"{where}: {len(value)} characters, over the limit of {limit}")
    return value


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise PermanentError(f"{where}: expected true or false, got {str(value)[:50]!r}")


def _when(value: Any, where: str, kind: Kind) -> date | datetime:
    try:
        if kind == "date":
            if isinstance(value, datetime):
                return value.date()
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return utc(parsed)
    except ValueError:
        raise PermanentError(f"{where}: {str(value)[:50]!r} is not an ISO {kind}") from None


def coerce(kind: Kind, value: Any, where: str, length: int = 200) -> Any:
    """``value`` as the Python value a column of ``kind`` holds; None stays None."""
    if value is None:
        return None
    if kind in ("int", "float"):
        return _number(value, where, kind)
    if kind == "bool":
        return _bool(value, where)
    if kind in ("date", "datetime"):
        return _when(value, where, kind)
    return _text(value, where, TEXT_MAX if kind == "text" else length)


def field_kind(spec: ObjectSpec, name: str) -> tuple[Kind, int]:
    """The kind (and text length) of a standard or meta field; unknown ones are refused."""
    f = spec.field(name)
    if f is not None:
        return f.kind, f.length
    if name in META_FIELDS:
        return META_FIELDS[name], 200
    raise unknown_field(spec, name)


def unknown_field(spec: ObjectSpec, name: str) -> PermanentError:
    allowed = ", ".join((*META_FIELDS, *spec.field_names, "custom.<name>"))
    return PermanentError(f"unknown field {name!r} of {spec.name}; allowed: {allowed}")


def custom_name(spec: ObjectSpec, name: str) -> str:
    """``name`` as a custom field name (letters, digits, underscores), else PermanentError."""
    if not CUSTOM_NAME.match(name):
        raise PermanentError(
            f"{spec.name}: custom field name {name[:70]!r} must be letters, digits and underscores (at most 63)"
        )
    return name


def check_custom(spec: ObjectSpec, custom: dict[str, Any], max_bytes: int) -> None:
    size = len(json.dumps(custom, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        raise PermanentError(f"{spec.name}: custom fields are {size} bytes, over CIRCUIT_RECORDS_CUSTOM_MAX_BYTES")


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def row_to_record(spec: ObjectSpec, m: Mapping[Any, Any]) -> dict[str, Any]:
    """A row (its mapping) as the JSON record circuits see: ids, standard fields, ``custom``, timestamps."""
    record: dict[str, Any] = {"object": spec.name, "id": m["id"], "external_id": m["external_id"]}
    record.update({name: to_json(m[name]) for name in spec.field_names})
    record["custom"] = dict(m["custom"] or {})
    record["tenant"] = m["tenant"]
    record["created_at"] = to_json(m["created_at"])
    record["updated_at"] = to_json(m["updated_at"])
    return record
