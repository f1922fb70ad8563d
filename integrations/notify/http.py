"""One JSON POST for the HTTP channels (Slack, webhooks), with the failure kinds they share.

* 2xx: done; the status is returned.
* 429 and 5xx: :class:`RetryableError` carrying the server's ``Retry-After`` as ``retry_after_s``.
* any other status: :class:`PermanentError` with the status and a short, scrubbed body excerpt.
* no connection, a timeout, a broken answer: :class:`RetryableError`.

The URL is a secret (Slack puts the credential in the path), so messages and log lines show it
only through :func:`~integrations.notify.config.mask_url`, and httpx's own request log line is
masked too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from circuits.actions import ActionContext
from circuits.errors import PermanentError, RetryableError
from integrations.notify.config import known_secrets, mask_url, one_line, scrub, settings_of

__all__ = ["USER_AGENT", "parse_retry_after", "post_json"]

USER_AGENT = "circuit-os-notify/0.1"
_CLIENT = "notify.http"


class _MaskUrls(logging.Filter):
    """httpx logs every request at INFO with its full URL; show only scheme://host/… instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(mask_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _new_client(timeout_s: float) -> httpx.Client:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskUrls) for f in httpx_log.filters):
        httpx_log.addFilter(_MaskUrls())
    return httpx.Client(timeout=timeout_s, follow_redirects=False, headers={"User-Agent": USER_AGENT})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def post_json(
    ctx: ActionContext,
    *,
    channel: str,
    target: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> int:
    """POST ``body`` (JSON bytes) to ``url`` and return the 2xx status; raise the error kind otherwise.

    ``channel`` and ``target`` name the destination in messages ("slack 'sales'"); ``secrets`` are
    scrubbed from any text the server sends back.
    """
    masked = mask_url(url)
    where = f"{channel} {target!r} ({masked})"
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https") or masked == "<invalid url>":
        raise PermanentError(f"{channel} {target!r}: the configured URL is not an http(s) URL")
    settings = settings_of(ctx)
    hidden = [url, *secrets, *known_secrets(settings)]
    client = ctx.resource(_CLIENT, lambda: _new_client(settings.notify_timeout_s))
    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json", **(headers or {})})
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{where} did not answer in time ({type(exc).__name__})") from None
    except httpx.InvalidURL:
        raise PermanentError(f"{channel} {target!r}: the configured URL is not valid") from None
    except httpx.HTTPError as exc:  # connection refused or reset, broken answer, TLS failure
        raise RetryableError(f"{where} could not be reached: {type(exc).__name__}: {scrub(str(exc), hidden)}") from None
    status = response.status_code
    if 200 <= status < 300:
        ctx.log.info("%s %r: %s answered %d", channel, target, masked, status)
        return status
    excerpt = scrub(one_line(response.text), hidden)
    if status == 429 or status >= 500:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        later = f"; retry after {wait:g}s" if wait is not None else ""
        raise RetryableError(f"{where} answered {status}{later}: {excerpt}", retry_after_s=wait)
    raise PermanentError(f"{where} answered {status}: {excerpt}")
