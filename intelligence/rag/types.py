"""The value types every RAG part passes around: documents in, hits out.

Plain frozen dataclasses (not pydantic) because they are built by the thousand on the
retrieval hot path; the actions convert them to pydantic models at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source document as a user hands it to ingestion.

    ``timestamp`` is when the content was produced or fetched (epoch seconds);
    ``ttl_s`` is how long it stays fresh; ``authority`` (0..1) is how much its
    source is trusted; ``source_uri`` lets the refresh circuit fetch it again.
    """

    id: str
    text: str
    title: str = ""
    source_uri: str = ""
    timestamp: float = 0.0
    ttl_s: float = 7 * 24 * 3600.0
    authority: float = 0.5
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document; ``id`` is ``"<doc_id>#<n>"``."""

    id: str
    doc_id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One result from any source; ``source`` survives every fusion step.

    ``score`` is the source's own score (higher is better); ``scores`` keeps the
    named parts (bm25, dense, fused, value parts) so a user can see why it ranked.
    """

    id: str
    text: str
    score: float
    source: str
    doc_id: str = ""
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    def with_score(self, score: float, **parts: float) -> Hit:
        """A copy with a new score and extra named score parts."""
        return replace(self, score=score, scores={**self.scores, **parts})

    @property
    def key(self) -> str:
        """The identity used to merge the same item across sources."""
        return self.doc_id or self.id
