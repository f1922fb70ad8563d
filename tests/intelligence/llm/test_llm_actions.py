"""llm.* actions through the real anthropic SDK against a local Messages API stub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from circuits.actions import ActionContext, ActionRegistry
from circuits.errors import ConfigError, PermanentError, RetryableError
from circuits.settings import Settings
from intelligence.llm.actions import classify, extract, generate, summarize
from intelligence.llm.schemas import ClassifyInput, ExtractInput, GenerateInput, SummarizeInput
from tests.stubs.anthropic_stub import AnthropicStub

LEAD_NOTE = (
    "Spoke with Dana Reyes from Globex today. Email: dana.reyes@globex.example. "
    "Company size: 240. They are unhappy with their current CRM pricing and want a demo next week. "
    "Budget approved for 2027. The weather was nice."
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "company_size": {"type": "integer", "minimum": 1},
    },
    "required": ["email", "company_size"],
    "additionalProperties": False,
}


def _settings(**update: Any) -> Settings:
    base = {
        "anthropic_api_key": "sk-test-key",
        "anthropic_model": "claude-default",
        "llm_max_tokens": 333,
        "llm_temperature": None,
        "llm_offline": False,
    }
    return Settings().model_copy(update={**base, **update})


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as server:
        yield server


@pytest.fixture
def ctx(stub: AnthropicStub) -> Iterator[ActionContext]:
    context = ActionContext.for_test(settings=_settings(anthropic_base_url=stub.base_url))
    yield context
    context.resources.close()


def run(ctx: ActionContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Through the action's spec, as a worker calls it (input validation, JSON output)."""
    return ActionRegistry.from_modules(["intelligence.llm.actions"]).get(name).run(ctx, inputs)


def test_generate_sends_the_step_knobs_and_returns_usage(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.reply = "Hello Dana, thanks for your time."
    out = run(
        ctx,
        "llm.generate",
        {
            "prompt": "Write a greeting",
            "system": "Be brief.",
            "model": "claude-x",
            "max_tokens": 50,
            "temperature": 0.7,
        },
    )
    assert out["text"] == "Hello Dana, thanks for your time." and out["offline"] is False
    assert out["model"] == "claude-x"
    assert out["usage"]["input_tokens"] > 0 and out["usage"]["output_tokens"] > 0
    sent = stub.requests[-1].body
    assert (sent["model"], sent["max_tokens"], sent["temperature"], sent["system"]) == (
        "claude-x",
        50,
        0.7,
        "Be brief.",
    )
    assert sent["messages"] == [{"role": "user", "content": "Write a greeting"}]
    assert stub.requests[-1].headers["authorization"] == "Bearer sk-test-key"


def test_defaults_come_from_settings_and_one_client_serves_the_process(ctx: ActionContext, stub: AnthropicStub) -> None:
    generate(ctx, GenerateInput(prompt="one"))
    generate(ctx, GenerateInput(prompt="two"))
    first, second = (r.body for r in stub.requests)
    assert (first["model"], first["max_tokens"]) == ("claude-default", 333)
    assert "temperature" not in first  # unset: not sent, since newer models refuse a temperature
    assert "system" not in first and second["messages"][0]["content"] == "two"
    client = ctx.resource("llm.claude", lambda: None)
    assert client is not None  # built once, kept for the process (rag.answer shares it)


def test_a_temperature_set_in_settings_is_sent(stub: AnthropicStub) -> None:
    ctx = ActionContext.for_test(settings=_settings(anthropic_base_url=stub.base_url, llm_temperature=0.2))
    generate(ctx, GenerateInput(prompt="one"))
    generate(ctx, GenerateInput(prompt="two", temperature=0.0))
    assert [r.body["temperature"] for r in stub.requests] == [0.2, 0.0]
    ctx.resources.close()


def test_summarize_asks_for_the_focus_and_length(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.reply = "  Globex wants a demo over CRM pricing.  "
    out = summarize(ctx, SummarizeInput(text=LEAD_NOTE, focus="pricing", length="medium"))
    assert out.summary == "Globex wants a demo over CRM pricing." and out.usage.input_tokens > 0
    prompt = stub.requests[-1].body["messages"][0]["content"]
    assert "focusing on pricing" in prompt and "three to five sentences" in prompt and LEAD_NOTE in prompt
    assert "summar" in stub.requests[-1].body["system"]


def test_classify_answers_one_of_the_labels(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.reply = " Hot. "
    out = run(ctx, "llm.classify", {"text": LEAD_NOTE, "labels": ["hot", "warm", "cold"]})
    assert out["label"] == "hot" and out["attempts"] == 1
    assert '"hot", "warm", "cold"' in stub.requests[-1].body["system"]


def test_classify_repairs_once_then_accepts(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.replies = ["This lead looks quite promising", "warm"]
    out = classify(ctx, ClassifyInput(text=LEAD_NOTE, labels=["hot", "warm", "cold"]))
    assert out.label == "warm" and out.attempts == 2
    first, second = (r.body for r in stub.requests)
    assert first["messages"][-1]["role"] == "user"
    repair = second["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[1]["content"] == "This lead looks quite promising"
    assert "is not one of the labels" in repair[2]["content"]
    assert out.usage.input_tokens == sum(len(json.dumps(r.body)) // 4 for r in stub.requests)  # both turns


def test_classify_fails_permanently_naming_the_labels(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.reply = "lukewarm"
    with pytest.raises(PermanentError, match=r"'lukewarm'.*\['hot', 'warm', 'cold'\]"):
        classify(ctx, ClassifyInput(text=LEAD_NOTE, labels=["hot", "warm", "cold"]))
    assert len(stub.requests) == 2  # one repair turn, no more


def test_classify_needs_two_distinct_labels(ctx: ActionContext) -> None:
    from pydantic import ValidationError

    for labels in (["hot"], ["hot", "HOT"], ["hot", " "]):
        with pytest.raises(ValidationError):
            run(ctx, "llm.classify", {"text": "x", "labels": labels})


def test_extract_returns_data_that_fits_the_schema(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.reply = '```json\n{"email": "dana.reyes@globex.example", "company_size": 240}\n```'
    out = run(ctx, "llm.extract", {"text": LEAD_NOTE, "schema": SCHEMA})
    assert out["data"] == {"email": "dana.reyes@globex.example", "company_size": 240} and out["attempts"] == 1
    assert '"company_size"' in stub.requests[-1].body["system"]


def test_extract_repairs_quoting_the_validation_error(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.replies = [
        '{"email": "dana.reyes@globex.example", "company_size": "240"}',
        '{"email": "d@g.example", "company_size": 240}',
    ]
    out = extract(ctx, ExtractInput.model_validate({"text": LEAD_NOTE, "schema": SCHEMA}))
    assert out.data == {"email": "d@g.example", "company_size": 240} and out.attempts == 2
    repair = stub.requests[-1].body["messages"][-1]["content"]
    assert "at company_size: '240' is not of type 'integer'" in repair


def test_extract_fails_after_one_repair(ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.replies = ["Sure! Here is the data.", '{"email": "d@g.example"}']
    with pytest.raises(PermanentError, match="after one repair: at \\(root\\): 'company_size' is a required property"):
        extract(ctx, ExtractInput.model_validate({"text": LEAD_NOTE, "schema": SCHEMA}))
    assert "the reply is not JSON" in stub.requests[-1].body["messages"][-1]["content"]


def test_extract_refuses_a_schema_that_is_not_one(ctx: ActionContext) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a valid JSON Schema"):
        run(ctx, "llm.extract", {"text": "x", "schema": {"type": "no-such-type"}})


@pytest.mark.parametrize(("status", "error"), [(429, RetryableError), (529, RetryableError), (400, PermanentError)])
def test_api_errors_map_onto_the_error_tree(
    ctx: ActionContext, stub: AnthropicStub, status: int, error: type[Exception]
) -> None:
    stub.fail_status = status
    with pytest.raises(error, match=f"HTTP {status}"):
        generate(ctx, GenerateInput(prompt="hi"))


def test_unreachable_claude_is_retryable() -> None:
    with AnthropicStub() as gone:
        url = gone.base_url
    ctx = ActionContext.for_test(settings=_settings(anthropic_base_url=url, llm_timeout_s=2.0))
    with pytest.raises(RetryableError, match="unreachable"):
        generate(ctx, GenerateInput(prompt="hi"))


def test_no_api_key_is_a_clear_permanent_config_error() -> None:
    ctx = ActionContext.for_test(settings=_settings(anthropic_api_key=None))
    with pytest.raises(PermanentError, match="set CIRCUIT_ANTHROPIC_API_KEY") as caught:
        summarize(ctx, SummarizeInput(text="some text"))
    assert isinstance(caught.value, ConfigError)  # never retried: the worker retries only what is not permanent


def test_offline_switch_is_ignored_when_a_key_is_set(stub: AnthropicStub) -> None:
    ctx = ActionContext.for_test(settings=_settings(anthropic_base_url=stub.base_url, llm_offline=True))
    stub.reply = "from the model"
    assert summarize(ctx, SummarizeInput(text=LEAD_NOTE)).summary == "from the model"
    ctx.resources.close()


def test_offline_mode_is_deterministic_and_says_so(stub: AnthropicStub) -> None:
    ctx = ActionContext.for_test(settings=_settings(anthropic_api_key=None, llm_offline=True))
    first = run(ctx, "llm.summarize", {"text": LEAD_NOTE, "focus": "pricing"})
    assert first == run(ctx, "llm.summarize", {"text": LEAD_NOTE, "focus": "pricing"})
    assert first["offline"] is True and first["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert "pricing" in first["summary"] and "weather" not in first["summary"]

    text = run(ctx, "llm.generate", {"prompt": LEAD_NOTE})
    assert text["offline"] is True and text["text"] and text["text"] in LEAD_NOTE.replace("  ", " ")

    label = run(ctx, "llm.classify", {"text": LEAD_NOTE, "labels": ["support request", "pricing", "demo request"]})
    assert label["label"] == "pricing" and label["offline"] is True

    data = run(ctx, "llm.extract", {"text": LEAD_NOTE, "schema": SCHEMA})
    assert data["data"] == {"email": "dana.reyes@globex.example", "company_size": 240} and data["offline"] is True

    with pytest.raises(PermanentError, match="offline.*'phone' is a required property"):
        run(ctx, "llm.extract", {"text": LEAD_NOTE, "schema": {**SCHEMA, "required": ["phone"]}})
    assert stub.requests == []  # nothing went to the API
