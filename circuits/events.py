"""The event envelope: CloudEvents 1.0 attributes plus ``tenant`` and ``idempotencykey``.

Producers hand us untrusted JSON; :func:`parse_event` turns it into an
:class:`Event` or raises :class:`EventError` naming the first bad field.
Extension attribute names follow the CloudEvents rule (lower-case letters and
digits), hence ``idempotencykey`` rather than ``idempotency_key``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from circuits.errors import EventError

TYPE_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$"
DEFAULT_MAX_BYTES = 256 * 1024


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

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def to_json(self) -> str:
        return self.model_dump_json()

    def as_context(self) -> dict[str, Any]:
        """The event as plain JSON data, the way conditions and templates see it."""
        return self.model_dump(mode="json")


def parse_event(raw: str | bytes | dict[str, Any], max_bytes: int = DEFAULT_MAX_BYTES) -> Event:
    """Validate an untrusted envelope (JSON text or an already-decoded dict).

    Raises:
        EventError: naming the field that is missing or wrong, or the size limit.
    """
    if isinstance(raw, (str, bytes)):
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > max_bytes:
            raise EventError(f"event is {size} bytes, over the limit of {max_bytes}", field="(envelope)")
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EventError(f"not valid JSON: {exc}", field="(envelope)") from None
    if not isinstance(raw, dict):
        raise EventError("an event must be a JSON object", field="(envelope)")
    try:
        size = len(json.dumps(raw, default=str))
    except (TypeError, ValueError) as exc:
        raise EventError(f"not JSON-serialisable: {exc}", field="data") from None
    if size > max_bytes:
        raise EventError(f"event is {size} bytes, over the limit of {max_bytes}", field="(envelope)")
    try:
        return Event.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(envelope)"
        msg = "unknown attribute" if err["type"] == "extra_forbidden" else err["msg"]
        raise EventError(msg, field=field) from None
