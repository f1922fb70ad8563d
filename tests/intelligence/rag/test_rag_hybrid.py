"""Part 2, hybrid search: on Cranfield, fusing dense and BM25 beats either alone.

Uses the first 20 Cranfield queries and the 133 documents judged for them (179 chunks),
embedded once for the module with the real model into a real Chroma store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intelligence.rag import benchmark, fusion, store
from intelligence.rag.collections import Collection
from intelligence.rag.evaluation import evaluate
from intelligence.rag.index import HybridIndex

QUERIES = 20


@pytest.fixture(scope="module")
def subset(cranfield: Collection) -> Collection:
    qids = list(cranfield.queries)[:QUERIES]
    docs = {d for q in qids for d in cranfield.qrels[q]}
    return Collection(
        corpus={d: cranfield.corpus[d] for d in cranfield.corpus if d in docs},
        queries={q: cranfield.queries[q] for q in qids},
        qrels={q: cranfield.qrels[q] for q in qids},
        name="cranfield-first20",
    )


@pytest.fixture(scope="module")
def chroma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chroma")


@pytest.fixture(scope="module")
def index(subset: Collection, chroma_dir: Path) -> Iterator[HybridIndex]:
    yield benchmark.eval_index(subset, store.chroma_client(chroma_dir))


def test_hybrid_beats_bm25_and_dense(subset: Collection, index: HybridIndex) -> None:
    cands = benchmark.candidates(index, subset.queries)
    ranked = benchmark.runs(cands, fusion.DEFAULT_ALPHA)
    ndcg = {name: evaluate(run, subset.qrels, 10).ndcg for name, run in ranked.items()}

    assert ndcg["bm25"] > 0.4 and ndcg["dense"] > 0.4  # both retrievers work on their own
    assert ndcg["hybrid"] >= max(ndcg["bm25"], ndcg["dense"]) + 0.01, ndcg
    assert ndcg["rrf"] > max(ndcg["bm25"], ndcg["dense"]), ndcg


def test_hits_explain_their_scores_and_the_store_survives_a_new_process(
    subset: Collection, index: HybridIndex, chroma_dir: Path
) -> None:
    query = subset.queries["1"]  # "what similarity laws must be obeyed when constructing aeroelastic models ..."
    hits = index.search(query, 5)
    assert len(hits) == 5 and all(h.source == "chroma" for h in hits)
    assert {"dense_norm", "bm25_norm", "fused"} <= set(hits[0].scores)
    assert hits == sorted(hits, key=lambda h: -h.score)

    # A fresh client (as another worker process would open) finds the same collection and results.
    client = store.chroma_client(chroma_dir)
    reopened = HybridIndex(store.open_collection(client, index.collection.name), client=client)
    assert reopened.count() == index.count()
    assert [h.id for h in reopened.search(query, 5)] == [h.id for h in hits]


def test_index_sees_writes_made_through_another_handle(index: HybridIndex, chroma_dir: Path) -> None:
    from intelligence.rag.types import Chunk

    client = store.chroma_client(chroma_dir)
    other = HybridIndex(store.open_collection(client, index.collection.name), client=client)
    assert not index.sparse("zeppelin mooring mast")  # BM25 mirror built, word unknown
    other.upsert([Chunk(id="new#0", doc_id="new", text="zeppelin mooring mast loads", metadata={"doc_id": "new"})])
    try:
        assert index.sparse("zeppelin mooring mast")[0].id == "new#0"  # generation bump -> BM25 rebuilt
    finally:
        other.delete_doc("new")
