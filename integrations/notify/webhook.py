"""``notify.webhook``: a signed JSON POST to a target named in settings.

Each request carries ``X-Circuit-Signature`` (HMAC-SHA256 over ``"<timestamp>.<body>"`` with the
target's secret), ``X-Circuit-Timestamp`` and ``Idempotency-Key`` (from run id and step id, the
same on every attempt), so a receiver can check who sent it, that it is fresh, and drop a repeat
with :func:`verify_signature` and the key.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from circuits.actions import ActionContext, action
from circuits.errors import PermanentError, SettingMissingError
from circuits.settings import Settings
from integrations.notify.config import NAME_PATTERN, reveal, settings_of
from integrations.notify.http import post_json
from integrations.notify.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    idempotency_key,
    sign,
    verify_signature,
)

__all__ = ["WebhookInput", "WebhookOutput", "send_webhook", "verify_signature"]


class WebhookInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(pattern=NAME_PATTERN, description="A name in CIRCUIT_WEBHOOK_TARGETS.")
    payload: dict[str, Any] = Field(default_factory=dict, description="The JSON body.")


class WebhookOutput(BaseModel):
    status: int
    target: str
    idempotency_key: str


def target_of(settings: Settings, name: str) -> tuple[str, str]:
    """``(url, secret)`` of the target ``name``; both must be set."""
    target = settings.webhook_targets.get(name)
    if target is None:
        known = ", ".join(sorted(settings.webhook_targets)) or "none"
        raise SettingMissingError(
            f"notify.webhook: no target named {name!r} in CIRCUIT_WEBHOOK_TARGETS (known: {known})"
        )
    url, secret = reveal(target.get("url")), reveal(target.get("secret"))
    missing = [key for key, value in (("url", url), ("secret", secret)) if not value]
    if missing:
        raise SettingMissingError(
            f"notify.webhook: target {name!r} in CIRCUIT_WEBHOOK_TARGETS has no {' or '.join(missing)}"
        )
    return url, secret


@action("notify.webhook", queue="notify", retries=3, timeout_s=30)
def send_webhook(ctx: ActionContext, inp: WebhookInput) -> WebhookOutput:
    """POST a JSON body, signed with the target's secret, to a target named in settings."""
    url, secret = target_of(settings_of(ctx), inp.target)
    try:
        body = json.dumps(inp.payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:
        raise PermanentError(f"notify.webhook: the payload is not valid JSON: {exc}") from None
    stamp = str(int(time.time()))
    key = idempotency_key(ctx.run_id, ctx.step_id)
    headers = {SIGNATURE_HEADER: sign(secret, stamp, body), TIMESTAMP_HEADER: stamp, IDEMPOTENCY_HEADER: key}
    status = post_json(ctx, channel="webhook", target=inp.target, url=url, body=body, headers=headers, secrets=[secret])
    return WebhookOutput(status=status, target=inp.target, idempotency_key=key)
