"""Claude actions: ``llm.generate``, ``llm.summarize``, ``llm.classify`` and ``llm.extract``.

One :class:`ClaudeClient` per process (``ctx.resource("llm.claude")``, shared with
``rag.answer``). ``classify`` and ``extract`` hold the model to a contract (one of the labels;
JSON that fits a schema) and give it one repair turn that says what was wrong before they fail
permanently. With no API key they fail with a :class:`SettingMissingError`, unless
``CIRCUIT_LLM_OFFLINE=true`` switches on the deterministic fallback in
:mod:`intelligence.llm.offline`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from circuits.actions import ActionContext, action
from circuits.errors import PermanentError
from intelligence.llm import offline
from intelligence.llm.client import ClaudeClient, LlmReply
from intelligence.llm.schemas import (
    ClassifyInput,
    ClassifyOutput,
    ExtractInput,
    ExtractOutput,
    GenerateInput,
    GenerateOutput,
    ModelKnobs,
    SummarizeInput,
    SummarizeOutput,
    Usage,
)

__all__ = ["classify", "extract", "generate", "summarize"]

OFFLINE_MODEL = "offline"
_LENGTH = {"short": "one or two sentences", "medium": "three to five sentences", "long": "one or two paragraphs"}
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def _settings(ctx: ActionContext) -> Any:
    if ctx.settings is not None:
        return ctx.settings
    from circuits.settings import get_settings

    return get_settings()


class Chat:
    """One step's conversation with Claude: the turns so far and the tokens they cost."""

    def __init__(self, ctx: ActionContext, knobs: ModelKnobs, system: str | None) -> None:
        settings = _settings(ctx)
        self.claude = ctx.resource("llm.claude", lambda: ClaudeClient.from_settings(settings))
        self.system = system
        self.model = knobs.model or settings.anthropic_model
        self.max_tokens = knobs.max_tokens or settings.llm_max_tokens
        self.temperature = knobs.temperature if knobs.temperature is not None else settings.llm_temperature
        self.messages: list[dict[str, Any]] = []
        self.usage = Usage()
        self.turns = 0
        self.last: LlmReply | None = None

    def say(self, text: str) -> str:
        """Send a user turn and return Claude's answer (kept in the conversation)."""
        self.messages.append({"role": "user", "content": text})
        reply = self.claude.complete(
            self.system, self.messages, self.max_tokens, model=self.model, temperature=self.temperature
        )
        self.messages.append({"role": "assistant", "content": reply.text or "(empty)"})
        self.usage.input_tokens += reply.usage.get("input_tokens", 0)
        self.usage.output_tokens += reply.usage.get("output_tokens", 0)
        self.turns += 1
        self.last = reply
        return reply.text

    def out(self) -> dict[str, Any]:
        """The fields every llm output shares."""
        return {"model": self.last.model if self.last else self.model, "usage": self.usage}


def _offline(ctx: ActionContext) -> bool:
    """True when the fallback answers: no API key, and CIRCUIT_LLM_OFFLINE switched on."""
    settings = _settings(ctx)
    return not settings.anthropic_api_key and bool(getattr(settings, "llm_offline", False))


def _offline_out() -> dict[str, Any]:
    return {"model": OFFLINE_MODEL, "usage": Usage(), "offline": True}


@action("llm.generate", queue="llm", retries=3, timeout_s=120)
def generate(ctx: ActionContext, inp: GenerateInput) -> GenerateOutput:
    """Send a prompt (and an optional system prompt) to Claude and return its text."""
    if _offline(ctx):
        return GenerateOutput(text=offline.summarize(inp.prompt, length="medium"), **_offline_out())
    chat = Chat(ctx, inp, inp.system)
    return GenerateOutput(text=chat.say(inp.prompt), **chat.out())


@action("llm.summarize", queue="llm", retries=3, timeout_s=120)
def summarize(ctx: ActionContext, inp: SummarizeInput) -> SummarizeOutput:
    """Summarize a text, optionally about one focus, in a short, medium or long form."""
    if _offline(ctx):
        return SummarizeOutput(summary=offline.summarize(inp.text, inp.focus, inp.length), **_offline_out())
    chat = Chat(ctx, inp, "You summarize text faithfully and concisely. Reply with the summary only.")
    focus = f", focusing on {inp.focus}" if inp.focus else ""
    summary = chat.say(f"Summarize the text below in {_LENGTH[inp.length]}{focus}.\n\nText:\n{inp.text}")
    return SummarizeOutput(summary=summary.strip(), **chat.out())


def _match_label(answer: str, labels: list[str]) -> str | None:
    """The label the answer names, forgiving case, quotes and a trailing full stop only."""
    cleaned = answer.strip().strip("`\"'*").rstrip(".").strip().lower()
    return next((label for label in labels if label.lower() == cleaned), None)


@action("llm.classify", queue="llm", retries=3, timeout_s=180)
def classify(ctx: ActionContext, inp: ClassifyInput) -> ClassifyOutput:
    """Pick exactly one of the given labels for a text (one repair turn if Claude strays)."""
    if _offline(ctx):
        return ClassifyOutput(label=offline.classify(inp.text, inp.labels), **_offline_out())
    listed = ", ".join(json.dumps(label) for label in inp.labels)
    system = f"You classify text. Answer with exactly one of these labels and nothing else: {listed}."
    if inp.instructions:
        system += f"\n\n{inp.instructions}"
    chat = Chat(ctx, inp, system)
    answer = chat.say(f"Text:\n{inp.text}\n\nLabel:")
    label = _match_label(answer, inp.labels)
    if label is None:
        answer = chat.say(f"{answer.strip()[:200]!r} is not one of the labels. Answer with exactly one of: {listed}.")
        label = _match_label(answer, inp.labels)
    if label is None:
        raise PermanentError(
            f"llm.classify: the model answered {answer.strip()[:200]!r} twice outside the labels {inp.labels}"
        )
    return ClassifyOutput(label=label, attempts=chat.turns, **chat.out())


def _parse(answer: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """The JSON in ``answer`` and None, or None and what is wrong with it."""
    from jsonschema import exceptions, validators

    try:
        data = json.loads(_FENCE.sub("", answer.strip()))
    except json.JSONDecodeError as exc:
        return None, f"the reply is not JSON ({exc})"
    error = exceptions.best_match(validators.validator_for(schema)(schema).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return None, f"at {where}: {error.message}"
    return data, None


@action("llm.extract", queue="llm", retries=3, timeout_s=180)
def extract(ctx: ActionContext, inp: ExtractInput) -> ExtractOutput:
    """Extract data from a text as JSON validated against a JSON Schema (one repair attempt)."""
    schema = inp.json_schema
    if _offline(ctx):
        data, error = _parse(json.dumps(offline.extract(inp.text, schema)), schema)
        if error is not None:
            raise PermanentError(f"llm.extract (offline): the fields found do not fit the schema: {error}")
        return ExtractOutput(data=data, **_offline_out())
    system = (
        "You extract data from text. Reply with one JSON value that fits the JSON Schema below and nothing "
        f"else: no prose, no code fences.\n\nJSON Schema:\n{json.dumps(schema)}"
    )
    if inp.instructions:
        system += f"\n\n{inp.instructions}"
    chat = Chat(ctx, inp, system)
    data, error = _parse(chat.say(f"Text:\n{inp.text}"), schema)
    if error is not None:
        repair = f"That reply does not fit the schema: {error}. Reply again with only the corrected JSON."
        data, error = _parse(chat.say(repair), schema)
    if error is not None:
        raise PermanentError(f"llm.extract: the reply does not fit the schema after one repair: {error}")
    return ExtractOutput(data=data, attempts=chat.turns, **chat.out())
