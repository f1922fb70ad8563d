"""Where a notify channel's secrets come from, and how they are kept out of sight.

Circuits only name a webhook or target; URLs, passwords and HMAC secrets live in
:class:`~circuits.settings.Settings` as ``SecretStr``. Whatever we say about them (log lines,
error messages, outputs, which the ledger stores) goes through :func:`mask_url` or
:func:`scrub` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import SecretStr

from circuits.actions import ActionContext
from circuits.settings import Settings, get_settings

__all__ = ["NAME_PATTERN", "known_secrets", "mask_url", "one_line", "reveal", "scrub", "settings_of"]

#: What a webhook or target name may look like; a URL pasted into a circuit file does not fit.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_MASK = "***"


def settings_of(ctx: ActionContext) -> Settings:
    """The settings the worker (or the test) handed in, else the process's own."""
    settings = ctx.settings
    return settings if isinstance(settings, Settings) else get_settings()


def reveal(value: SecretStr | str | None) -> str:
    """The plain text of a secret setting ("" when unset), for the one place that must send it."""
    if value is None:
        return ""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def known_secrets(settings: Settings) -> list[str]:
    """Every notify secret in ``settings``, to scrub from text a server sends back.

    All of them, not just the channel's own: a server may echo anything it was ever sent.
    """
    found = [reveal(settings.slack_webhook_url), reveal(settings.smtp_password)]
    found += [reveal(url) for url in settings.slack_webhooks.values()]
    found += [reveal(value) for target in settings.webhook_targets.values() for value in target.values()]
    return [s for s in found if s]


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/xyz`` -> ``https://hooks.slack.com/…``.

    Webhook URLs carry their credential in the path (and sometimes in userinfo or the query), so
    only the scheme, host and port are ever shown.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<invalid url>"
    if not parts.scheme or not host:
        return "<invalid url>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}/…"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, and the path and query of every secret URL, replaced by ``***``.

    For text we did not write (a server's error body, a driver's message) that might echo a secret.
    """
    for secret in secrets:
        if not secret:
            continue
        pieces = [secret]
        try:
            parts = urlsplit(secret)
            pieces += [p for p in (parts.path, parts.query, parts.password or "") if len(p) >= 6]
        except ValueError:
            pass
        for piece in sorted(pieces, key=len, reverse=True):
            text = text.replace(piece, _MASK)
    return text


def one_line(text: str, limit: int = 200) -> str:
    """A short, single-line excerpt of a server's answer, for an error message."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
