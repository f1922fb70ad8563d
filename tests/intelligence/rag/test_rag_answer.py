"""rag.answer: retrieval + Claude (real SDK, local stub server) with citations to the retrieved chunks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from circuits.actions import ActionContext
from circuits.errors import ConfigError, PermanentError, RetryableError
from circuits.settings import Settings
from intelligence.rag.actions import answer, ingest
from intelligence.rag.schemas import AnswerInput, DocumentIn, IngestInput
from tests.stubs.anthropic_stub import AnthropicStub

from .conftest import KB


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as server:
        yield server


@pytest.fixture
def llm_ctx(settings: Settings, stub: AnthropicStub) -> Iterator[ActionContext]:
    context = ActionContext.for_test(settings=settings.model_copy(update={"anthropic_base_url": stub.base_url}))
    ingest(context, IngestInput(collection="helpdesk", documents=[DocumentIn(id=i, title=t, text=x) for i, t, x in KB]))
    yield context
    context.resources.close()


def test_answer_cites_retrieved_chunks_and_records_them(llm_ctx: ActionContext, stub: AnthropicStub) -> None:
    stub.cite = ["refunds#0", "invented#3"]  # a model may cite an id it was never given
    out = answer(llm_ctx, AnswerInput(collection="helpdesk", question="How long does a refund take?", k=4))

    assert "[refunds#0]" in out.answer
    assert [c.id for c in out.citations] == ["refunds#0"]  # the invented id is dropped
    assert out.citations[0].doc_id == "refunds" and out.citations[0].source == "chroma"
    assert "refunds#0" in out.context_ids and 0 < out.context_tokens <= 2000
    assert out.model == "claude-test" and out.usage["input_tokens"] > 0

    sent = stub.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    assert sent.body["model"] == "claude-test" and "cite" in sent.body["system"]
    prompt = sent.body["messages"][0]["content"]
    assert "[refunds#0]" in prompt and "Question: How long does a refund take?" in prompt

    service = llm_ctx.resource("rag.service", lambda: None)  # type: ignore[arg-type, return-value]
    assert service.feedback.usefulness("helpdesk", ["refunds"])["refunds"] > 0.5  # implicit "cited" signal


def test_context_budget_limits_what_claude_sees(llm_ctx: ActionContext, stub: AnthropicStub) -> None:
    out = answer(llm_ctx, AnswerInput(collection="helpdesk", question="refund", k=8, max_context_tokens=60))
    assert out.context_tokens <= 60 and 1 <= len(out.context_ids) < 8
    assert stub.requests[-1].body["messages"][0]["content"].count("(source: chroma") == len(out.context_ids)


@pytest.mark.parametrize(("status", "error"), [(529, RetryableError), (429, RetryableError), (400, PermanentError)])
def test_api_errors_map_onto_the_error_tree(
    llm_ctx: ActionContext, stub: AnthropicStub, status: int, error: type[Exception]
) -> None:
    stub.fail_status = status
    with pytest.raises(error, match=f"HTTP {status}"):
        answer(llm_ctx, AnswerInput(collection="helpdesk", question="How long does a refund take?"))


def test_missing_api_key_is_a_config_error(settings: Settings) -> None:
    ctx = ActionContext.for_test(settings=settings.model_copy(update={"anthropic_api_key": None}))
    try:
        ingest(ctx, IngestInput(collection="helpdesk", documents=[DocumentIn(id="x", text="some text")]))
        with pytest.raises(ConfigError, match="CIRCUIT_ANTHROPIC_API_KEY"):
            answer(ctx, AnswerInput(collection="helpdesk", question="anything"))
    finally:
        ctx.resources.close()
