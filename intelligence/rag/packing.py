"""Pack ranked chunks into a context window under a token budget.

Greedy maximal marginal relevance: each step takes the chunk maximising
``lam * relevance - (1 - lam) * max similarity to what is already packed``, skipping
near-duplicates (similarity >= ``dup_threshold``) and chunks that no longer fit.
Similarity is Jaccard over word sets: cheap, model-free, and good at catching the
same passage ingested twice or overlapping chunk windows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from intelligence.rag.fusion import minmax
from intelligence.rag.types import Hit

_WORD = re.compile(r"\w+")
#: Words per token for English prose under Claude's tokenizer is about 0.75; we round up.
TOKENS_PER_WORD = 1.35
LAMBDA = 0.7
DUP_THRESHOLD = 0.8


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (no tokenizer download needed offline)."""
    return max(1, math.ceil(len(text.split()) * TOKENS_PER_WORD))


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _relevance(hits: Sequence[Hit]) -> dict[str, float]:
    """Scores over the best one: keeps the gaps (min-max would zero the last candidate)."""
    top = max((h.score for h in hits), default=0.0)
    if top <= 0 or any(h.score < 0 for h in hits):
        return minmax(hits)
    return {h.id: h.score / top for h in hits}


@dataclass
class Packed:
    """What went into the window, what was left out and why."""

    hits: list[Hit] = field(default_factory=list)
    tokens: int = 0
    duplicates: list[str] = field(default_factory=list)
    over_budget: list[str] = field(default_factory=list)


def pack(hits: Sequence[Hit], budget: int, lam: float = LAMBDA, dup_threshold: float = DUP_THRESHOLD) -> Packed:
    """Choose chunks from ``hits`` (scored, any order) for a window of ``budget`` tokens."""
    rel = _relevance(hits)
    words = {h.id: _words(h.text) for h in hits}
    cost = {h.id: estimate_tokens(h.text) for h in hits}
    left = list(hits)
    out = Packed()
    while left:
        best, best_mmr = None, -math.inf
        for hit in left:
            sim = max((jaccard(words[hit.id], words[p.id]) for p in out.hits), default=0.0)
            if sim >= dup_threshold:
                continue
            mmr = lam * rel.get(hit.id, 0.0) - (1 - lam) * sim
            if mmr > best_mmr:
                best, best_mmr = hit, mmr
        if best is None:  # everything left duplicates something packed
            out.duplicates.extend(h.id for h in left)
            break
        left.remove(best)
        if out.tokens + cost[best.id] > budget:
            out.over_budget.append(best.id)
            continue
        out.hits.append(best)
        out.tokens += cost[best.id]
    return out
