"""RAG actions: ``rag.ingest``, ``rag.retrieve``, ``rag.answer``, ``rag.feedback``,
``rag.flag_stale`` and ``rag.refresh``.

Importing this module is cheap: Chroma, torch, bm25s and the anthropic SDK load inside
the per-process resources (``ctx.resource``) the first time an action runs.
"""

from __future__ import annotations

import time
from typing import Any

from circuits.actions import ActionContext, action
from intelligence.rag.schemas import (
    AnswerInput,
    AnswerOutput,
    Citation,
    FeedbackInput,
    FeedbackOutput,
    FlagStaleInput,
    FlagStaleOutput,
    HitOut,
    IngestInput,
    IngestOutput,
    RefreshInput,
    RefreshOutput,
    RetrieveInput,
    RetrieveOutput,
)

__all__ = ["answer", "feedback", "flag_stale", "ingest", "refresh", "retrieve"]


def _settings(ctx: ActionContext) -> Any:
    if ctx.settings is not None:
        return ctx.settings
    from circuits.settings import get_settings

    return get_settings()


def _service(ctx: ActionContext) -> Any:
    from intelligence.rag.service import RagService

    return ctx.resource("rag.service", lambda: RagService.from_settings(_settings(ctx)))


def _idem(ctx: ActionContext) -> str:
    return f"{ctx.run_id}:{ctx.step_id}"


@action("rag.ingest", queue="rag", retries=3, timeout_s=600)
def ingest(ctx: ActionContext, inp: IngestInput) -> IngestOutput:
    """Chunk, embed and index documents (inline or from a path); unchanged ones are skipped."""
    from intelligence.rag.loaders import document_from_record, documents_from_path

    defaults = {k: v for k, v in (("ttl_s", inp.ttl_s), ("authority", inp.authority)) if v is not None}
    docs = [document_from_record({**defaults, **d.model_dump(exclude_none=True)}) for d in inp.documents]
    if inp.path:
        docs += documents_from_path(inp.path, **defaults)
    result = _service(ctx).ingest(inp.collection, docs, force=inp.force)
    return IngestOutput(
        collection=inp.collection, ingested=result.ingested, skipped=result.skipped, chunks=result.chunks
    )


def _retrieve(ctx: ActionContext, inp: RetrieveInput | AnswerInput, query: str, k: int) -> Any:
    from intelligence.rag.scoring import ValueWeights
    from intelligence.rag.sources import ListSource

    sources = [ListSource(s.name, s.records, s.text_key, s.id_key) for s in inp.sources]
    weights = ValueWeights.model_validate(inp.weights) if inp.weights else None
    return _service(ctx).retrieve(inp.collection, query, k, context=inp.context, sources=sources, weights=weights)


@action("rag.retrieve", queue="rag", retries=2, timeout_s=30)
def retrieve(ctx: ActionContext, inp: RetrieveInput) -> RetrieveOutput:
    """Route, search (hybrid + extra sources), fuse and rank by value; each hit names its source."""
    got = _retrieve(ctx, inp, inp.query, inp.k)
    return RetrieveOutput(
        hits=[HitOut.from_hit(h) for h in got.hits], intent=got.route.intent, sources=list(got.route.sources)
    )


@action("rag.answer", queue="llm", retries=3, timeout_s=120)
def answer(ctx: ActionContext, inp: AnswerInput) -> AnswerOutput:
    """Answer a question with Claude from retrieved chunks packed under a token budget, citing them."""
    from intelligence.llm.client import ClaudeClient
    from intelligence.rag.answer import build_prompt, cited_ids
    from intelligence.rag.packing import pack

    got = _retrieve(ctx, inp, inp.question, inp.k)
    packed = pack(got.hits, inp.max_context_tokens)
    prompt = build_prompt(inp.question, packed.hits)
    claude = ctx.resource("llm.claude", lambda: ClaudeClient.from_settings(_settings(ctx)))
    reply = claude.complete(prompt.system, [{"role": "user", "content": prompt.user}], max_tokens=inp.max_tokens)
    by_id = {h.id: h for h in packed.hits}
    cited = cited_ids(reply.text, packed.hits)
    service = _service(ctx)
    if service.feedback is not None:  # implicit signal: the answer relied on these chunks
        for cid in cited:
            service.feedback.record(
                inp.collection, by_id[cid].key, "cited", query=inp.question, chunk_id=cid, run_id=_idem(ctx)
            )
    return AnswerOutput(
        answer=reply.text,
        citations=[Citation.from_hit(by_id[c]) for c in cited],
        context_ids=[h.id for h in packed.hits],
        context_tokens=packed.tokens,
        model=reply.model,
        usage=reply.usage,
        intent=got.route.intent,
    )


@action("rag.feedback", queue="rag", retries=3, timeout_s=10)
def feedback(ctx: ActionContext, inp: FeedbackInput) -> FeedbackOutput:
    """Record an explicit (up/down) or implicit (click/dwell/cited/skip) signal on a result."""
    from circuits.errors import ConfigError

    service = _service(ctx)
    if service.feedback is None:
        raise ConfigError("feedback needs a database (CIRCUIT_DATABASE_URL)")
    doc_id = inp.doc_id or inp.chunk_id.split("#", 1)[0]
    row = service.feedback.record(
        inp.collection, doc_id, inp.signal, query=inp.query, chunk_id=inp.chunk_id, value=inp.value, run_id=_idem(ctx)
    )
    return FeedbackOutput(
        id=row, doc_id=doc_id, usefulness=service.feedback.usefulness(inp.collection, [doc_id])[doc_id]
    )


@action("rag.flag_stale", queue="rag", retries=2, timeout_s=60)
def flag_stale(ctx: ActionContext, inp: FlagStaleInput) -> FlagStaleOutput:
    """Flag documents whose time-to-live has passed; emit ``rag.knowledge_stale`` for newly stale ones.

    The event {collection, stale: [ids], count} goes out before the flags are written: a retry
    after a failed write emits it again with the same id (deduped), and one after a successful
    write finds nothing new, so each document is announced once, when it first goes stale.
    """
    service = _service(ctx)
    now = time.time()
    newly = service.expired_unflagged(inp.collection, now)
    if newly:
        data = {"collection": inp.collection, "stale": newly, "count": len(newly)}
        ctx.emit("rag.knowledge_stale", data, subject=inp.collection)
    return FlagStaleOutput(collection=inp.collection, stale=service.flag_stale(inp.collection, now), flagged=newly)


@action("rag.refresh", queue="rag", retries=3, timeout_s=900)
def refresh(ctx: ActionContext, inp: RefreshInput) -> RefreshOutput:
    """Re-read stale documents (or the given ids) from their sources and re-ingest them."""
    refreshed, failed = _service(ctx).refresh(inp.collection, inp.doc_ids or None)
    return RefreshOutput(collection=inp.collection, refreshed=refreshed, failed=failed)
