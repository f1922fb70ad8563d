"""A small Claude client: one call, typed reply, SDK errors mapped onto our error tree.

The anthropic SDK is imported lazily (importing an actions module must stay cheap).
Transient failures (connection, timeout, 408/409/429/5xx, 529 overloaded) become
:class:`RetryableError` so the step is retried with backoff; anything else (bad key,
bad request) is :class:`PermanentError`. The SDK's own retries are kept low because
the engine retries the whole step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from circuits.errors import ConfigError, PermanentError, RetryableError, SettingMissingError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-4-5"
TIMEOUT_S = 60.0
SDK_RETRIES = 1
RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class LlmReply:
    """The text Claude returned, and what it cost."""

    text: str
    model: str
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


class ClaudeClient:
    """Messages API calls with our errors; one instance per process (it pools connections)."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        timeout_s: float = TIMEOUT_S,
        max_retries: int = SDK_RETRIES,
    ) -> None:
        if not api_key:
            raise SettingMissingError(
                "Claude needs an API key: set CIRCUIT_ANTHROPIC_API_KEY "
                "(llm.* actions also run offline with CIRCUIT_LLM_OFFLINE=true)"
            )
        try:
            import anthropic
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError("Claude calls need the llm extra: pip install 'circuit-os[llm]'") from exc
        self._anthropic = anthropic
        self.model = model
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    @classmethod
    def from_settings(cls, settings: Any) -> ClaudeClient:
        timeout_s = float(getattr(settings, "llm_timeout_s", TIMEOUT_S))
        return cls(settings.anthropic_api_key, settings.anthropic_base_url, settings.anthropic_model, timeout_s)

    def complete(
        self,
        system: str | None,
        messages: Sequence[dict[str, Any]],
        max_tokens: int = 1024,
        *,
        model: str | None = None,
        temperature: float | None = None,
    ) -> LlmReply:
        """One Messages API call; text blocks are joined. ``model`` overrides the client's default."""
        sdk = self._anthropic
        extra: dict[str, Any] = {}
        if system:
            extra["system"] = system
        if temperature is not None:
            # anthropic 1.x dropped sampling knobs from create(); the API takes them on models that allow them.
            extra["extra_body"] = {"temperature": temperature}
        try:
            msg = self._client.messages.create(
                model=model or self.model,
                messages=cast(Any, list(messages)),
                max_tokens=max_tokens,
                **extra,
            )
        except sdk.APIConnectionError as exc:  # includes timeouts
            raise RetryableError(f"Claude unreachable: {exc}") from exc
        except sdk.APIStatusError as exc:
            status = exc.status_code
            text = f"Claude answered HTTP {status}: {exc.message}"
            if status in RETRYABLE_STATUS or status >= 500:
                raise RetryableError(text) from exc
            raise PermanentError(text) from exc
        text = "".join(block.text for block in msg.content if isinstance(block, sdk.types.TextBlock))
        usage = {
            "input_tokens": int(getattr(msg.usage, "input_tokens", 0) or 0),
            "output_tokens": int(getattr(msg.usage, "output_tokens", 0) or 0),
        }
        log.info("claude %s: %d in, %d out tokens", msg.model, usage["input_tokens"], usage["output_tokens"])
        return LlmReply(text=text, model=msg.model, stop_reason=msg.stop_reason, usage=usage)

    def close(self) -> None:
        self._client.close()
