"""The event envelope: CloudEvents 1.0 attributes plus ``tenant`` and ``idempotencykey``.

Producers hand us untrusted JSON; :func:`parse_event` turns it into an
:class:`Event` or raises :class:`EventError` naming the first bad field, and
nothing else, whatever it is given. Parsing is bounded: size (one measure,
:func:`json_size`, used everywhere), nesting depth, number length, and text that
is not valid Unicode (lone surrogates) is refused.
Extension attribute names follow the CloudEvents rule (lower-case letters and
digits), hence ``idempotencykey`` rather than ``idempotency_key``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from circuits.errors import EventError

TYPE_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$"
DEFAULT_MAX_BYTES = 256 * 1024
MAX_DEPTH = 32  # containers nested inside an attribute's value (``data``)
MAX_NUMBER_CHARS = 100  # digits of one number; Python refuses int text over 4,300 digits
_RAW_SLACK = 8  # raw text may be this many times the limit (whitespace, \u escapes) before parsing
_NORMALISE_SLACK = 1024  # defaults (id, time) and normalised times may add a little on the way in
_SURROGATE = re.compile("[\ud800-\udfff]")
_FIELD_CHARS = 200
MAX_CHAIN = 32  # circuit names an event's ``chain`` keeps (the newest ones)
MAX_CHAIN_NAME = 100


class Event(BaseModel):
    """One business event, e.g. ``lead.created`` for lead 42."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(pattern=TYPE_PATTERN, max_length=200)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = Field(None, max_length=500)
    datacontenttype: Literal["application/json"] = "application/json"
    data: JsonValue = None
    tenant: str = Field("default", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    idempotencykey: str | None = Field(None, min_length=1, max_length=200)
    # record triggers: how many circuit writes led to this event, and the circuits that made them,
    # so ingest can stop a circuit that keeps re-triggering itself (CIRCUIT_MAX_CHAIN_DEPTH)
    chaindepth: int = Field(0, ge=0, le=1_000_000)
    chain: list[str] = Field(default_factory=list, max_length=MAX_CHAIN)

    @field_validator("chain")
    @classmethod
    def _short_names(cls, value: list[str]) -> list[str]:
        if any(len(name) > MAX_CHAIN_NAME for name in value):
            raise ValueError(f"a circuit name in chain is over {MAX_CHAIN_NAME} characters")
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def to_json(self) -> str:
        return self.model_dump_json()

    def as_context(self) -> dict[str, Any]:
        """The event as plain JSON data, the way conditions and templates see it."""
        return self.model_dump(mode="json")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: the one size measure of an event, everywhere.

    Non-ASCII text counts its UTF-8 bytes (not ``\\uXXXX`` escapes) and whitespace
    does not count, so an envelope measures the same as text, as a dict and after
    a round trip through a task message.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))


class _Refused(Exception):
    """Internal: one bound broken, with the field path where."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _field(path: tuple[str | int, ...]) -> str:
    name = ".".join(str(p) for p in path) or "(envelope)"
    name = _SURROGATE.sub("\ufffd", name)
    return name if len(name) <= _FIELD_CHARS else name[: _FIELD_CHARS - 3] + "..."


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} characters, over the limit of {MAX_NUMBER_CHARS}", ())
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _constant(text: str) -> float:
    raise _Refused(f"{text} is not a JSON number", ())


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    if _SURROGATE.search(text):
        raise _Refused("text holds a lone surrogate (not valid Unicode)", path)
    if "\x00" in text:  # PostgreSQL text and JSONB cannot hold it: the run could never be recorded
        raise _Refused("text holds a NUL character (\\u0000)", path)


def _check_scalar(item: Any, where: tuple[str | int, ...]) -> None:
    if isinstance(item, str):
        _check_text(item, where)
    elif isinstance(item, bool) or item is None:
        return
    elif isinstance(item, int):
        if item.bit_length() > MAX_NUMBER_CHARS * 3.33:
            raise _Refused(f"a number over {MAX_NUMBER_CHARS} digits", where)
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise _Refused(f"{item} is not a JSON number", where)
    else:
        raise _Refused(f"{type(item).__name__} is not a JSON value", where)


def _check_value(value: Any, path: tuple[str | int, ...]) -> None:
    """Walk ``value`` without recursion: JSON types only, bounded depth, numbers and text valid."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if not isinstance(item, (dict, list, tuple)):
            _check_scalar(item, where)
            continue
        if depth >= MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} deep", where)
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise _Refused(f"a key must be text, not {type(key).__name__}", where)
                _check_text(key, where + (key,))
                stack.append((child, where + (key,), depth + 1))
        else:
            stack.extend((child, where + (i,), depth + 1) for i, child in enumerate(item))


def _decode(raw: str | bytes, max_bytes: int) -> Any:
    if len(raw) > _RAW_SLACK * max_bytes:
        raise _Refused(f"event is {len(raw)} bytes, over the limit of {max_bytes}", ())
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(f"not valid UTF-8 at byte {exc.start}", ()) from None
    try:
        return json.loads(raw, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise _Refused(f"not valid JSON: {exc}", ()) from None
    except RecursionError:
        raise _Refused(f"not valid JSON: nested more than {MAX_DEPTH} deep", ()) from None


def _check_envelope(raw: dict[Any, Any], max_bytes: int) -> None:
    for key, value in raw.items():
        if not isinstance(key, str):
            raise _Refused(f"an attribute name must be text, not {type(key).__name__}", ())
        _check_text(key, (key,))
        if not (key == "time" and isinstance(value, datetime)):
            _check_value(value, (key,))
    size = json_size(raw)
    if size > max_bytes + _NORMALISE_SLACK:
        raise _Refused(f"event is {size} bytes, over the limit of {max_bytes}", ())


def _validate(raw: dict[str, Any], max_bytes: int) -> Event:
    try:
        event = Event.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = "unknown attribute" if err["type"] == "extra_forbidden" else err["msg"]
        raise _Refused(msg, tuple(err["loc"])) from None
    size = json_size(event.as_context())
    if size > max_bytes:
        raise _Refused(f"event is {size} bytes, over the limit of {max_bytes}", ())
    return event


def parse_event(raw: str | bytes | dict[str, Any], max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Validate an untrusted envelope (JSON text or an already-decoded dict).

    The size limit applies to :func:`json_size` of the envelope as accepted (with
    its defaults filled in), so the same event passes or fails at publish and at
    ingest alike.

    Raises:
        EventError: naming the field that is missing or wrong, or the bound broken;
            never any other exception, whatever ``raw`` is.
    """
    try:
        if isinstance(raw, (str, bytes)):
            raw = _decode(raw, max_bytes)
        if not isinstance(raw, dict):
            raise _Refused("an event must be a JSON object", ())
        _check_envelope(raw, max_bytes)
        return _validate(raw, max_bytes)
    except _Refused as exc:
        raise EventError(exc.message, field=_field(exc.path)) from None
    except Exception as exc:  # noqa: BLE001 - a value we did not foresee is still just a bad event
        raise EventError(f"unreadable envelope ({type(exc).__name__})", field="(envelope)") from None
