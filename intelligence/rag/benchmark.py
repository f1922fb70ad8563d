"""Evaluate BM25, dense and hybrid retrieval on a labelled collection, side by side.

Dense and BM25 candidates are computed once per query and fused afterwards, so tuning
the fusion weight costs no extra searches. Tuning is honest: ``alpha`` is chosen on
the *tune* half of the queries (even positions) and every row is reported on the
*test* half (odd positions) it never saw; ``all`` rows are printed for reference.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from intelligence.rag import fusion, store
from intelligence.rag.chunking import chunk_document
from intelligence.rag.collections import Collection
from intelligence.rag.embedding import embed
from intelligence.rag.evaluation import Metrics, evaluate
from intelligence.rag.index import CANDIDATES, HybridIndex
from intelligence.rag.types import Document, Hit

log = logging.getLogger(__name__)

ALPHAS = tuple(round(a * 0.05, 2) for a in range(21))


@dataclass(frozen=True)
class Candidates:
    """Per query: dense hits and BM25 hits (chunk level)."""

    dense: dict[str, list[Hit]]
    sparse: dict[str, list[Hit]]


@dataclass(frozen=True)
class Report:
    alpha: float
    tuned_on: int
    test: dict[str, Metrics]
    all: dict[str, Metrics]


def corpus_fingerprint(coll: Collection) -> str:
    digest = hashlib.sha256()
    for doc_id, (title, text) in sorted(coll.corpus.items()):
        digest.update(f"{doc_id}\x00{title}\x00{text}\x01".encode())
    return digest.hexdigest()[:16]


def eval_index(coll: Collection, client: Any) -> HybridIndex:
    """The collection's index in ``client``, embedded once and reused while the corpus is unchanged."""
    name = f"eval-{coll.name or 'collection'}-{corpus_fingerprint(coll)}"[:120]
    index = HybridIndex(store.open_collection(client, name), source="chroma", client=client)
    docs = [Document(id=d, text=text, title=title) for d, (title, text) in coll.corpus.items()]
    chunks = [c for doc in docs for c in chunk_document(doc)]
    if index.count() != len(chunks):
        started = time.perf_counter()
        log.info("embedding %d chunks of %s (once; cached in Chroma)", len(chunks), coll.name)
        index.upsert(chunks)
        log.info("indexed in %.1f s", time.perf_counter() - started)
    return index


def candidates(index: HybridIndex, queries: dict[str, str], pool: int = CANDIDATES) -> Candidates:
    qids = list(queries)
    vectors = embed([queries[q] for q in qids])  # batched: one model call for every query
    dense = {q: index.dense(queries[q], pool, vector=vectors[i]) for i, q in enumerate(qids)}
    sparse = {q: index.sparse(queries[q], pool) for q in qids}
    return Candidates(dense, sparse)


def runs(cands: Candidates, alpha: float) -> dict[str, dict[str, list[str]]]:
    """Document rankings per strategy: bm25, dense, hybrid (weighted at ``alpha``) and rrf."""
    out: dict[str, dict[str, list[str]]] = {"bm25": {}, "dense": {}, "hybrid": {}, "rrf": {}}
    for q in cands.dense:
        d, s = cands.dense[q], cands.sparse[q]
        out["bm25"][q] = fusion.collapse(s)
        out["dense"][q] = fusion.collapse(d)
        out["hybrid"][q] = fusion.collapse(fusion.weighted(d, s, alpha))
        out["rrf"][q] = fusion.collapse(fusion.rrf({"dense": d, "sparse": s}))
    return out


def tune_alpha(cands: Candidates, coll: Collection, queries: Sequence[str], k: int) -> float:
    """The dense weight with the best nDCG@k on ``queries``."""

    def score(alpha: float) -> float:
        ranked = {q: fusion.collapse(fusion.weighted(cands.dense[q], cands.sparse[q], alpha)) for q in queries}
        return evaluate(ranked, coll.qrels, k, queries).ndcg

    return max(ALPHAS, key=score)


def run_eval(coll: Collection, client: Any, k: int = 10, alpha: float | None = None) -> Report:
    """Metrics of every strategy; ``alpha`` None = tune on the even-position queries."""
    index = eval_index(coll, client)
    cands = candidates(index, coll.queries)
    qids = list(coll.queries)
    tune, test = qids[1::2], qids[0::2]  # positions 2, 4, ... tune; 1, 3, ... test
    chosen = tune_alpha(cands, coll, tune, k) if alpha is None else alpha
    ranked = runs(cands, chosen)
    return Report(
        alpha=chosen,
        tuned_on=len(tune) if alpha is None else 0,
        test={name: evaluate(r, coll.qrels, k, test) for name, r in ranked.items()},
        all={name: evaluate(r, coll.qrels, k) for name, r in ranked.items()},
    )
