"""``notify.slack``: a message through a Slack incoming webhook, with optional Block Kit blocks.

The step names a webhook (``webhook: sales``); its URL comes from ``CIRCUIT_SLACK_WEBHOOKS``
(or ``CIRCUIT_SLACK_WEBHOOK_URL`` when the step names none), never from the circuit file,
because the URL itself is the credential.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from circuits.actions import ActionContext, action
from circuits.errors import SettingMissingError
from circuits.settings import Settings
from integrations.notify.config import NAME_PATTERN, reveal, settings_of
from integrations.notify.http import post_json

__all__ = ["SlackInput", "SlackOutput", "send_slack"]

DEFAULT_WEBHOOK = "default"


class SlackInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=40_000, description="The message; with blocks, the notification text.")
    blocks: list[dict[str, Any]] | None = Field(None, max_length=50, description="Slack Block Kit blocks.")
    channel: str | None = Field(None, max_length=80, description="Channel override (legacy webhooks only).")
    webhook: str | None = Field(
        None, pattern=NAME_PATTERN, description="A name in CIRCUIT_SLACK_WEBHOOKS; unset = CIRCUIT_SLACK_WEBHOOK_URL."
    )

    @field_validator("blocks")
    @classmethod
    def _typed_blocks(cls, blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, block in enumerate(blocks or []):
            if not isinstance(block.get("type"), str):
                raise ValueError(f"block {i} has no 'type' (Block Kit needs one, e.g. 'section')")
        return blocks


class SlackOutput(BaseModel):
    status: int
    target: str


def webhook_url(settings: Settings, name: str | None) -> tuple[str, str]:
    """``(target name, URL)`` of the webhook ``name``, or of the default one."""
    if name is None:
        url = reveal(settings.slack_webhook_url)
        if not url:
            raise SettingMissingError(
                "notify.slack: the step names no webhook and CIRCUIT_SLACK_WEBHOOK_URL is not set"
            )
        return DEFAULT_WEBHOOK, url
    secret = settings.slack_webhooks.get(name)
    if secret is None:
        known = ", ".join(sorted(settings.slack_webhooks)) or "none"
        raise SettingMissingError(f"notify.slack: no webhook named {name!r} in CIRCUIT_SLACK_WEBHOOKS (known: {known})")
    return name, reveal(secret)


@action("notify.slack", queue="notify", retries=3, timeout_s=30)
def send_slack(ctx: ActionContext, inp: SlackInput) -> SlackOutput:
    """Post a message to a Slack incoming webhook named in settings."""
    target, url = webhook_url(settings_of(ctx), inp.webhook)
    body: dict[str, Any] = {"text": inp.text}
    if inp.blocks is not None:
        body["blocks"] = inp.blocks
    if inp.channel is not None:
        body["channel"] = inp.channel
    status = post_json(ctx, channel="slack", target=target, url=url, body=json.dumps(body).encode("utf-8"))
    return SlackOutput(status=status, target=target)
