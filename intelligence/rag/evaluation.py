"""Ranking metrics (precision@k, recall@k, nDCG@k, MRR) over graded relevance labels.

Graded gains are used as given (a qrel of 0 or below is non-relevant); nDCG uses the
linear-gain form ``gain / log2(rank + 1)``; MRR counts the first relevant item within k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Qrels = Mapping[str, Mapping[str, float]]
Run = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Metrics:
    """Mean metrics over the evaluated queries."""

    ndcg: float
    mrr: float
    precision: float
    recall: float
    queries: int
    k: int

    def row(self, name: str) -> str:
        """One aligned line for side-by-side printing."""
        return (
            f"{name:<8} nDCG@{self.k}={self.ndcg:.3f}  MRR@{self.k}={self.mrr:.3f}  "
            f"P@{self.k}={self.precision:.3f}  R@{self.k}={self.recall:.3f}  (n={self.queries})"
        )


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative gain of the first ``k`` items."""
    dcg = sum(max(gains.get(doc, 0.0), 0.0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def reciprocal_rank(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """1 / rank of the first relevant item within ``k``, else 0."""
    for i, doc in enumerate(ranked[:k]):
        if gains.get(doc, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def precision_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """Share of the first ``k`` slots holding a relevant item (empty slots count as misses)."""
    return sum(1 for doc in ranked[:k] if gains.get(doc, 0.0) > 0) / k


def recall_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """Share of all relevant items found in the first ``k``."""
    relevant = sum(1 for g in gains.values() if g > 0)
    if relevant == 0:
        return 0.0
    return sum(1 for doc in ranked[:k] if gains.get(doc, 0.0) > 0) / relevant


def evaluate(run: Run, qrels: Qrels, k: int = 10, queries: Sequence[str] | None = None) -> Metrics:
    """Mean metrics of ``run`` over ``queries`` (default: every query with a relevant item)."""
    ids = list(queries) if queries is not None else list(qrels)
    ids = [q for q in ids if any(g > 0 for g in qrels.get(q, {}).values())]
    if not ids:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0, k)
    total = [0.0, 0.0, 0.0, 0.0]
    for q in ids:
        ranked, gains = run.get(q, []), qrels[q]
        total[0] += ndcg_at_k(ranked, gains, k)
        total[1] += reciprocal_rank(ranked, gains, k)
        total[2] += precision_at_k(ranked, gains, k)
        total[3] += recall_at_k(ranked, gains, k)
    n = len(ids)
    return Metrics(total[0] / n, total[1] / n, total[2] / n, total[3] / n, n, k)
