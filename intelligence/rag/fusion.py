"""Fuse ranked lists: reciprocal rank fusion and a tuned weighted score fusion.

RRF needs no tuning and mixes any sources (it only sees ranks). Weighted fusion mixes
min-max normalised scores ``alpha * dense + (1 - alpha) * sparse``; on Cranfield it beats
RRF once ``alpha`` is tuned (see bench/bench_rag.py). Every fused hit keeps its first
source in ``source`` and all the sources that found it in ``metadata["sources"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from intelligence.rag.types import Hit

RRF_K = 60
#: Dense weight of the weighted fusion; tuned on the even-position Cranfield queries (bench/bench_rag.py).
DEFAULT_ALPHA = 0.65


def _merge(lists: Mapping[str, Sequence[Hit]], key_by_doc: bool) -> dict[str, Hit]:
    first: dict[str, Hit] = {}
    for hits in lists.values():
        for hit in hits:
            key = hit.key if key_by_doc else hit.id
            if key not in first:
                first[key] = hit
    return first


def _found_in(lists: Mapping[str, Sequence[Hit]], key_by_doc: bool) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for hits in lists.values():
        for hit in hits:
            sources = found.setdefault(hit.key if key_by_doc else hit.id, [])
            if hit.source not in sources:
                sources.append(hit.source)
    return found


def rrf(
    lists: Mapping[str, Sequence[Hit]],
    k: int = RRF_K,
    weights: Mapping[str, float] | None = None,
    key_by_doc: bool = False,
) -> list[Hit]:
    """Reciprocal rank fusion of named ranked lists: ``sum_w w / (k + rank)``, best first."""
    scores: dict[str, float] = {}
    for name, hits in lists.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, hit in enumerate(hits, start=1):
            key = hit.key if key_by_doc else hit.id
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    first, found = _merge(lists, key_by_doc), _found_in(lists, key_by_doc)
    fused = [first[key].with_score(score, fused=score) for key, score in sorted(scores.items(), key=lambda kv: -kv[1])]
    return [_tag_sources(hit, found[hit.key if key_by_doc else hit.id]) for hit in fused]


def minmax(hits: Sequence[Hit]) -> dict[str, float]:
    """Scores of ``hits`` scaled to [0, 1] by the list's own min and max."""
    if not hits:
        return {}
    lo, hi = min(h.score for h in hits), max(h.score for h in hits)
    span = hi - lo
    return {h.id: (h.score - lo) / span if span > 0 else 1.0 for h in hits}


def weighted(dense: Sequence[Hit], sparse: Sequence[Hit], alpha: float = DEFAULT_ALPHA) -> list[Hit]:
    """``alpha * dense + (1 - alpha) * sparse`` over min-max scores; an item missing from a list gets 0 there."""
    d, s = minmax(dense), minmax(sparse)
    lists = {"dense": dense, "sparse": sparse}
    first, found = _merge(lists, key_by_doc=False), _found_in(lists, key_by_doc=False)
    scored = {key: alpha * d.get(key, 0.0) + (1 - alpha) * s.get(key, 0.0) for key in first}
    fused = [
        first[key].with_score(v, fused=v, dense_norm=d.get(key, 0.0), bm25_norm=s.get(key, 0.0))
        for key, v in sorted(scored.items(), key=lambda kv: -kv[1])
    ]
    return [_tag_sources(hit, found[hit.id]) for hit in fused]


def _tag_sources(hit: Hit, sources: list[str]) -> Hit:
    return replace(hit, metadata={**hit.metadata, "sources": list(sources)})


def collapse(hits: Sequence[Hit]) -> list[str]:
    """Document ids in first-seen order (a document's best chunk ranks it)."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.key, None)
    return list(seen)
