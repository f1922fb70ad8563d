"""Value scoring: rank by more than relevance.

``value = w_rel * relevance + w_fresh * freshness + w_auth * authority
+ w_use * usefulness + w_ctx * context_match``, each part in [0, 1]:

- relevance: the retrieval score, min-max scaled over the candidates;
- freshness: ``0.5 ** (age / ttl)``, so a document is at 0.5 when its time-to-live ends
  (and is flagged stale), 0.5 when its age is unknown;
- authority: trust in the document's source, set at ingestion (default 0.5);
- usefulness: learned from feedback (:mod:`intelligence.rag.feedback`), 0.5 when none;
- context match: overlap of the caller's context (tags, or free text) with the chunk.

Weights come from configuration (``CIRCUIT_RAG_VALUE_WEIGHTS`` once the setting
exists; :data:`DEFAULT_WEIGHTS` meanwhile) and can be overridden per request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from intelligence.rag.fusion import minmax
from intelligence.rag.types import Hit

_WORD = re.compile(r"[a-z0-9]{3,}")


class ValueWeights(BaseModel):
    """Weights of the five value parts (need not sum to 1)."""

    relevance: float = Field(0.6, ge=0)
    freshness: float = Field(0.1, ge=0)
    authority: float = Field(0.05, ge=0)
    usefulness: float = Field(0.2, ge=0)
    context: float = Field(0.05, ge=0)


DEFAULT_WEIGHTS = ValueWeights()


def freshness(meta: Mapping[str, Any], now: float) -> tuple[float, bool]:
    """(freshness in [0, 1], stale?) from the chunk's ``timestamp`` and ``ttl_s``."""
    ts, ttl = float(meta.get("timestamp") or 0.0), float(meta.get("ttl_s") or 0.0)
    if ts <= 0 or ttl <= 0:
        return 0.5, False
    age = max(0.0, now - ts)
    return 0.5 ** (age / ttl), age > ttl


def context_match(hit: Hit, context: Mapping[str, Any] | None) -> float:
    """Share of the caller's context tags (or context words) that the chunk carries."""
    if not context:
        return 0.0
    tags = {str(t).lower() for t in context.get("tags", [])}
    if tags:
        hit_tags = {t.strip().lower() for t in str(hit.metadata.get("tags", "")).split(",") if t.strip()}
        return len(tags & hit_tags) / len(tags)
    words = set(_WORD.findall(str(context.get("text", "")).lower()))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(hit.text.lower()))) / len(words)


def value_rank(
    hits: Sequence[Hit],
    *,
    usefulness: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
    weights: ValueWeights = DEFAULT_WEIGHTS,
    now: float | None = None,
) -> list[Hit]:
    """``hits`` re-scored by value, best first; each keeps its parts in ``scores``."""
    now = time.time() if now is None else now
    rel = minmax(hits)
    useful = usefulness or {}
    ranked = []
    for hit in hits:
        fresh, stale = freshness(hit.metadata, now)
        parts = {
            "relevance": rel.get(hit.id, 0.0),
            "freshness": fresh,
            "authority": float(hit.metadata.get("authority", 0.5)),
            "usefulness": useful.get(hit.key, 0.5),
            "context": context_match(hit, context),
        }
        value = sum(getattr(weights, name) * part for name, part in parts.items())
        scored = hit.with_score(value, value=value, **parts)
        if stale:
            scored = scored.with_score(value, stale=1.0)
        ranked.append(scored)
    ranked.sort(key=lambda h: -h.score)
    return ranked
