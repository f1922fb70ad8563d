"""The CloudEvents HTTP binding: structured, batch and binary mode, to plain envelopes.

* structured: ``Content-Type: application/cloudevents+json``, the body is one event;
* batch: ``application/cloudevents-batch+json``, the body is a JSON array of events;
* binary: the attributes travel as ``ce-*`` headers and the body is the event's ``data``
  (JSON, since events carry ``application/json`` data);
* plain ``application/json``: an object is one event, an array a batch.

What comes out goes through the same validation as every other publish path
(``circuits.events.parse_event`` inside ``workers.publish.publish_envelope``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from circuits.errors import EventError

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"


class Unsupported(ValueError):
    """A content type this endpoint does not read."""


class NotJson(ValueError):
    """The body is not JSON."""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotJson(f"the body is not JSON: {str(exc)[:200]}") from None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def envelopes(headers: Mapping[str, str], body: bytes) -> tuple[list[Any], bool]:
    """The event envelopes of a request, and whether it was a batch.

    Raises:
        Unsupported: a content type that is none of the modes.
        NotJson: a body that should be JSON and is not.
        EventError: a structurally wrong batch (not an array) or structured event (not an object).
    """
    kind = media_type(headers.get("content-type"))
    ce = {k.lower()[3:]: v for k, v in headers.items() if k.lower().startswith("ce-")}
    if kind == BATCH:
        data = _json(body)
        if not isinstance(data, list):
            raise EventError("a batch must be a JSON array of events", field="(batch)")
        return data, True
    if kind == STRUCTURED:
        return [_json(body)], False
    if ce:  # binary mode: attributes in headers, the body is data
        if kind not in (JSON, "") and not kind.endswith("+json"):
            raise Unsupported(f"binary mode carries JSON data only, not {kind}")
        envelope: dict[str, Any] = dict(ce)
        if "chaindepth" in envelope and envelope["chaindepth"].isdigit():
            envelope["chaindepth"] = int(envelope["chaindepth"])
        if body:
            envelope["data"] = _json(body)
        return [envelope], False
    if kind == JSON:
        data = _json(body)
        return (data, True) if isinstance(data, list) else ([data], False)
    raise Unsupported(
        f"content type {kind or '(none)'!r}: send {STRUCTURED}, {BATCH}, {JSON}, or ce-* headers (binary mode)"
    )
