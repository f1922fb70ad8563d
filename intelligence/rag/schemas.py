"""Typed inputs and outputs of the RAG actions (pydantic, JSON on the wire)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator

if TYPE_CHECKING:
    from intelligence.rag.types import Hit

DEFAULT_COLLECTION = "default"


class DocumentIn(BaseModel):
    """A document given inline; ``ttl_s`` and ``authority`` drive freshness and value scoring."""

    id: str
    text: str
    title: str | None = None
    source_uri: str | None = None
    timestamp: float | None = None
    ttl_s: float | None = Field(None, gt=0)
    authority: float | None = Field(None, ge=0, le=1)
    tags: list[str] = Field(default_factory=list)


class InlineSource(BaseModel):
    """Results of another step (graph query, MCP tool) fused in as a named source."""

    name: str
    records: list[dict[str, Any]]
    text_key: str = "text"
    id_key: str = "id"


class IngestInput(BaseModel):
    collection: str = DEFAULT_COLLECTION
    documents: list[DocumentIn] = Field(default_factory=list)
    path: str | None = Field(None, description="A .jsonl file, text file or folder to read documents from.")
    ttl_s: float | None = Field(None, gt=0)
    authority: float | None = Field(None, ge=0, le=1)
    force: bool = False

    @model_validator(mode="after")
    def _something(self) -> IngestInput:
        if not self.documents and not self.path:
            raise ValueError("give documents or a path")
        return self


class IngestOutput(BaseModel):
    collection: str
    ingested: list[str]
    skipped: list[str]
    chunks: int


class RetrieveInput(BaseModel):
    collection: str = DEFAULT_COLLECTION
    query: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)
    context: dict[str, Any] = Field(default_factory=dict, description="{'tags': [...]} or {'text': ...}")
    sources: list[InlineSource] = Field(default_factory=list)
    weights: dict[str, float] | None = Field(None, description="Override value weights for this request.")


class HitOut(BaseModel):
    id: str
    doc_id: str
    text: str
    title: str
    score: float
    source: str
    stale: bool
    scores: dict[str, float]

    @classmethod
    def from_hit(cls, hit: Hit) -> HitOut:
        return cls(
            id=hit.id,
            doc_id=hit.key,
            text=hit.text,
            title=hit.title,
            score=hit.score,
            source=hit.source,
            stale=bool(hit.scores.get("stale")),
            scores={k: round(v, 6) for k, v in hit.scores.items()},
        )


class RetrieveOutput(BaseModel):
    hits: list[HitOut]
    intent: str
    sources: list[str]


class AnswerInput(BaseModel):
    collection: str = DEFAULT_COLLECTION
    question: str = Field(min_length=1)
    k: int = Field(8, ge=1, le=50)
    max_context_tokens: int = Field(2000, ge=50)
    max_tokens: int = Field(1024, ge=16)
    context: dict[str, Any] = Field(default_factory=dict)
    sources: list[InlineSource] = Field(default_factory=list)
    weights: dict[str, float] | None = None


class Citation(BaseModel):
    id: str
    doc_id: str
    source: str
    title: str

    @classmethod
    def from_hit(cls, hit: Hit) -> Citation:
        return cls(id=hit.id, doc_id=hit.key, source=hit.source, title=hit.title)


class AnswerOutput(BaseModel):
    answer: str
    citations: list[Citation]
    context_ids: list[str]
    context_tokens: int
    model: str
    usage: dict[str, int]
    intent: str


class FeedbackInput(BaseModel):
    collection: str = DEFAULT_COLLECTION
    signal: str = Field(description="up, down (explicit); click, dwell, cited, skip (implicit)")
    doc_id: str = ""
    chunk_id: str = ""
    query: str = ""
    value: float | None = None

    @model_validator(mode="after")
    def _target(self) -> FeedbackInput:
        if not self.doc_id and not self.chunk_id:
            raise ValueError("give doc_id or chunk_id")
        return self


class FeedbackOutput(BaseModel):
    id: int
    doc_id: str
    usefulness: float


class FlagStaleInput(BaseModel):
    collection: str = DEFAULT_COLLECTION


class FlagStaleOutput(BaseModel):
    collection: str
    stale: list[str] = Field(description="Every document flagged stale (now or before).")
    flagged: list[str] = Field(default_factory=list, description="The ones this sweep flagged (rag.knowledge_stale).")


class RefreshInput(BaseModel):
    collection: str = DEFAULT_COLLECTION
    doc_ids: list[str] = Field(default_factory=list, description="Empty = every document flagged stale.")


class RefreshOutput(BaseModel):
    collection: str
    refreshed: list[str]
    failed: dict[str, str]
