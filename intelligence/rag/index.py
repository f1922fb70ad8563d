"""Hybrid search over one Chroma collection: dense vectors plus BM25, fused.

Chroma is the store of record (texts, vectors, metadata). The BM25 index is rebuilt
from it when the collection's ``generation``
(a random token replaced by every write, from any process) differs from the one the
index was built at, so a worker sees another's ingests.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from intelligence.rag import fusion
from intelligence.rag.embedding import embed
from intelligence.rag.sparse import BM25
from intelligence.rag.types import Chunk, Hit

log = logging.getLogger(__name__)

Strategy = Literal["hybrid", "rrf", "dense", "sparse"]
#: How many candidates each retriever contributes before fusion.
CANDIDATES = 100
UPSERT_BATCH = 256


class HybridIndex:
    """Dense + sparse retrieval over a Chroma collection; ``source`` names it in every hit."""

    def __init__(
        self, collection: Any, source: str = "chroma", model_path: str | None = None, client: Any = None
    ) -> None:
        self.collection = collection
        self.client = client
        self.source = source
        self.model_path = model_path
        self._lock = threading.Lock()
        self._bm25: BM25 | None = None
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._metas: list[dict[str, Any]] = []
        self._pos: dict[str, int] = {}
        self._generation: str | None = None

    # --- writes -----------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk]) -> int:
        """Embed and store ``chunks`` (same id = replaced); returns how many were written."""
        for start in range(0, len(chunks), UPSERT_BATCH):
            batch = chunks[start : start + UPSERT_BATCH]
            vectors = embed([c.text for c in batch], self.model_path)
            self.collection.upsert(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[c.metadata for c in batch],
                embeddings=list(vectors),
            )
        self._bump()
        return len(chunks)

    def delete_doc(self, doc_id: str) -> None:
        """Remove every chunk of ``doc_id`` (before re-ingesting a changed document)."""
        self.collection.delete(where={"doc_id": doc_id})
        self._bump()

    def _bump(self) -> None:
        # A fresh random token, not a counter: two writers racing can never end on the same value.
        self.collection.modify(metadata={"generation": uuid.uuid4().hex})
        with self._lock:
            self._generation = None  # rebuild on next search

    def _current_metadata(self) -> dict[str, Any]:
        """The collection's metadata as stored now (another process may have bumped it)."""
        if self.client is None:  # no client to re-read through: only our own writes are seen
            return dict(self.collection.metadata or {})
        return dict(self.client.get_collection(self.collection.name).metadata or {})

    # --- BM25 state -----------------------------------------------------------------
    def _sparse(self) -> BM25:
        generation = str(self._current_metadata().get("generation", 0))
        with self._lock:
            if self._bm25 is None or generation != self._generation:
                got = self.collection.get(include=["documents", "metadatas"])
                self._ids = list(got["ids"])
                self._texts = [t or "" for t in got["documents"]]
                self._metas = [dict(m or {}) for m in got["metadatas"]]
                self._pos = {cid: i for i, cid in enumerate(self._ids)}
                self._bm25 = BM25(self._texts)
                self._generation = generation
                log.info("built BM25 over %d chunks of %s (generation %s)", len(self._ids), self.source, generation)
            return self._bm25

    def count(self) -> int:
        return int(self.collection.count())

    def chunk_metadata(self) -> dict[str, dict[str, Any]]:
        """Metadata of every chunk by id (from the BM25 mirror; cheap)."""
        self._sparse()
        return dict(zip(self._ids, self._metas, strict=True))

    # --- reads ----------------------------------------------------------------------
    def _hit(self, chunk_id: str, text: str, meta: dict[str, Any], score: float, part: str) -> Hit:
        return Hit(
            id=chunk_id,
            text=text,
            score=score,
            source=self.source,
            doc_id=str(meta.get("doc_id", chunk_id)),
            title=str(meta.get("title", "")),
            metadata=meta,
            scores={part: score},
        )

    def sparse(self, query: str, n: int = CANDIDATES) -> list[Hit]:
        """BM25 hits, best first."""
        bm25 = self._sparse()
        return [self._hit(self._ids[i], self._texts[i], self._metas[i], s, "bm25") for i, s in bm25.top(query, n)]

    def dense(self, query: str, n: int = CANDIDATES, vector: Any = None) -> list[Hit]:
        """Nearest chunks by cosine similarity of MiniLM embeddings, best first."""
        self._sparse()  # texts and metadata come from the in-memory mirror: a lighter Chroma query
        total = len(self._ids)
        if total == 0:
            return []
        vec = vector if vector is not None else embed([query], self.model_path)[0]
        got = self.collection.query(query_embeddings=[vec], n_results=min(n, total), include=["distances"])
        hits = []
        for cid, dist in zip(got["ids"][0], got["distances"][0], strict=True):
            i = self._pos.get(cid)
            if i is not None:  # written by another process after our mirror was built: next search sees it
                hits.append(self._hit(cid, self._texts[i], self._metas[i], 1.0 - float(dist), "dense"))
        return hits

    def search(
        self, query: str, n: int = 10, strategy: Strategy = "hybrid", alpha: float = fusion.DEFAULT_ALPHA
    ) -> list[Hit]:
        """The ``n`` best chunks for ``query`` by ``strategy`` (weighted hybrid, RRF, dense or sparse)."""
        pool = max(n, CANDIDATES)
        if strategy == "sparse":
            return self.sparse(query, n)
        if strategy == "dense":
            return self.dense(query, n)
        dense, sparse = self.dense(query, pool), self.sparse(query, pool)
        fused = (
            fusion.rrf({"dense": dense, "sparse": sparse})
            if strategy == "rrf"
            else fusion.weighted(dense, sparse, alpha)
        )
        return fused[:n]
