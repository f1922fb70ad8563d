"""The RAG service: ingest, retrieve (route, search, fuse, value-rank), freshness, feedback.

One instance per worker process (built through ``ctx.resource``) holds the Chroma
client, the per-collection hybrid indexes and the database engine, so the embedder,
the BM25 index and connections are built once, not per task.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Engine

from circuits.errors import ConfigError, NotFoundError, PermanentError
from intelligence.rag import loaders, store
from intelligence.rag.chunking import chunk_document
from intelligence.rag.feedback import FeedbackStore
from intelligence.rag.index import HybridIndex
from intelligence.rag.registry import DocumentRegistry
from intelligence.rag.router import Route, route
from intelligence.rag.scoring import DEFAULT_WEIGHTS, ValueWeights, value_rank
from intelligence.rag.sources import IndexSource, Source, search_all
from intelligence.rag.types import Chunk, Document, Hit

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,126}[a-zA-Z0-9]$")
#: Candidates value-ranked per requested result: room for feedback and freshness to reorder.
POOL_FACTOR = 3
MIN_POOL = 30


@dataclass(frozen=True)
class IngestResult:
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks: int = 0


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    route: Route


class RagService:
    """Everything retrieval needs in one process."""

    def __init__(self, client: Any, engine: Engine | None = None, weights: ValueWeights = DEFAULT_WEIGHTS) -> None:
        self.client = client
        self.engine = engine
        self.weights = weights
        self.registry = DocumentRegistry(engine) if engine is not None else None
        self.feedback = FeedbackStore(engine) if engine is not None else None
        self._indexes: dict[str, HybridIndex] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> RagService:
        """Embedded Chroma under ``settings.home`` (or a server at ``chroma_url``) and the app database."""
        from storage.base import make_engine

        engine = make_engine(settings.database_url)
        if getattr(settings, "auto_migrate", True):
            from storage.migrate import upgrade

            upgrade(engine)
        raw = getattr(settings, "rag_value_weights", None)
        weights = ValueWeights.model_validate(raw) if raw else DEFAULT_WEIGHTS
        return cls(store.chroma_client(settings.home, settings.chroma_url), engine, weights)

    def index(self, collection: str) -> HybridIndex:
        """The hybrid index of ``collection`` (created on first use)."""
        if not _NAME.match(collection):
            raise ConfigError(f"collection name {collection!r}: use 3-128 letters, digits, '.', '_' or '-'")
        if collection not in self._indexes:
            self._indexes[collection] = HybridIndex(store.open_collection(self.client, collection), client=self.client)
        return self._indexes[collection]

    # --- ingestion and freshness ------------------------------------------------------
    def ingest(self, collection: str, docs: Sequence[Document], force: bool = False) -> IngestResult:
        """Chunk, embed and store ``docs``; unchanged documents are skipped unless ``force``."""
        now = time.time()
        index = self.index(collection)
        skipped: list[str] = []
        todo: list[tuple[Document, list[Chunk]]] = []
        for doc in docs:
            if self.registry is not None and not force and self.registry.unchanged(collection, doc):
                skipped.append(doc.id)
                continue
            doc = doc if doc.timestamp else replace(doc, timestamp=now)
            todo.append((doc, chunk_document(doc)))
        if self.registry is not None:  # a shorter new version must not leave its old tail chunks behind
            for doc, chunks in todo:
                old = self.registry.get(collection, doc.id)
                if old and old["chunks"] > len(chunks):
                    index.collection.delete(ids=[f"{doc.id}#{n}" for n in range(len(chunks), old["chunks"])])
        written = index.upsert([c for _, chunks in todo for c in chunks]) if todo else 0
        if self.registry is not None:
            for doc, chunks in todo:
                self.registry.upsert(collection, doc, len(chunks), now)
        log.info("%s: ingested %d docs (%d chunks), skipped %d", collection, len(todo), written, len(skipped))
        return IngestResult(ingested=[d.id for d, _ in todo], skipped=skipped, chunks=written)

    def flag_stale(self, collection: str, now: float | None = None) -> list[str]:
        """Flag documents past their time-to-live; returns the stale ids."""
        return self._registry().flag_stale(collection, now)

    def expired_unflagged(self, collection: str, now: float) -> list[str]:
        """Documents past their time-to-live that are not flagged yet: what a sweep at ``now`` newly flags."""
        return self._registry().expired_unflagged(collection, now)

    def refresh(self, collection: str, doc_ids: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
        """Re-read stale documents from their sources and re-ingest them: (refreshed, {id: why failed})."""
        registry = self._registry()
        ids = list(doc_ids) if doc_ids else registry.stale(collection)
        fresh: list[Document] = []
        failed: dict[str, str] = {}
        for doc_id in ids:
            row = registry.get(collection, doc_id)
            if row is None:
                failed[doc_id] = "not registered"
                continue
            try:
                doc = loaders.reload_document(row["source_uri"], doc_id, ttl_s=row["ttl_s"], authority=row["authority"])
            except (NotFoundError, PermanentError) as exc:
                failed[doc_id] = str(exc)
                continue
            fresh.append(replace(doc, timestamp=time.time(), title=doc.title or row["title"]))
        self.ingest(collection, fresh, force=True)
        return [d.id for d in fresh], failed

    def _registry(self) -> DocumentRegistry:
        if self.registry is None:
            raise ConfigError("freshness tracking needs a database (CIRCUIT_DATABASE_URL)")
        return self.registry

    # --- retrieval ----------------------------------------------------------------------
    def retrieve(
        self,
        collection: str,
        query: str,
        k: int = 5,
        *,
        context: Mapping[str, Any] | None = None,
        sources: Sequence[Source] = (),
        weights: ValueWeights | None = None,
    ) -> Retrieval:
        """Route the query, search its sources, fuse, then rank the pool by value."""
        index = self.index(collection)
        extra = {s.name: s for s in sources}
        chosen = route(query, (index.source, *extra))
        pool = max(k * POOL_FACTOR, MIN_POOL)
        main = IndexSource(index, "hybrid", chosen.alpha)
        picked: list[Source] = [main, *(extra[name] for name in chosen.sources[1:] if name in extra)]
        candidates = main.search(query, pool) if len(picked) == 1 else search_all(picked, query, pool)
        useful = self.feedback.usefulness(collection, (h.key for h in candidates)) if self.feedback else {}
        hits = value_rank(candidates, usefulness=useful, context=context, weights=weights or self.weights)[:k]
        log.info("%s: %r -> %s via %s, %d hits", collection, query[:60], chosen.intent, chosen.sources, len(hits))
        return Retrieval(hits, chosen)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
