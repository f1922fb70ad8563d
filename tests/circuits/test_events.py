"""The event envelope: CloudEvents attributes, tenant, idempotency key; errors name the field."""

from __future__ import annotations

import json

import pytest

from circuits.errors import EventError
from circuits.events import parse_event


def test_defaults_fill_id_time_and_tenant() -> None:
    event = parse_event({"type": "lead.created", "source": "web", "data": {"email": "a@b.c"}})
    assert event.specversion == "1.0" and event.tenant == "default" and event.id and event.time.tzinfo


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"source": "web"}, "type"),
        ({"type": "lead", "source": "web"}, "type"),
        ({"type": "lead.created"}, "source"),
        ({"type": "lead.created", "source": "web", "time": "yesterday"}, "time"),
        ({"type": "lead.created", "source": "web", "colour": "red"}, "colour"),
        ({"type": "lead.created", "source": "web", "tenant": "a b"}, "tenant"),
        ("{not json", "(envelope)"),
        ("[1, 2]", "(envelope)"),
    ],
)
def test_malformed_events_name_the_field(raw: object, field: str) -> None:
    with pytest.raises(EventError) as err:
        parse_event(raw)  # type: ignore[arg-type]
    assert err.value.field == field


def test_size_limit() -> None:
    raw = json.dumps({"type": "a.b", "source": "s", "data": "x" * 2000})
    with pytest.raises(EventError, match="over the limit of 1000"):
        parse_event(raw, max_bytes=1000)
