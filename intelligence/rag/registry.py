"""The document registry (``rag_documents``): what was ingested, from where, fresh until when.

The freshness sweep reads it to flag stale documents; the refresh step re-ingests the
flagged ones from their ``source_uri``. Chroma holds the chunks; this holds the books.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from intelligence.rag.models import RagDocument
from intelligence.rag.types import Document

log = logging.getLogger(__name__)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DocumentRegistry:
    """Rows of ``rag_documents`` for one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def unchanged(self, collection: str, doc: Document) -> bool:
        """True when ``doc`` is registered with the same content (ingest may skip re-embedding)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(RagDocument.content_hash).where(
                    RagDocument.collection == collection, RagDocument.doc_id == doc.id
                )
            ).scalar_one_or_none()
        return found == content_hash(doc.text)

    def upsert(self, collection: str, doc: Document, chunks: int, now: float | None = None) -> None:
        """Register ``doc`` as freshly ingested (clears its stale flag)."""
        now = time.time() if now is None else now
        ts = doc.timestamp or now
        values = {
            "title": doc.title,
            "source_uri": doc.source_uri,
            "content_hash": content_hash(doc.text),
            "chunks": chunks,
            "authority": doc.authority,
            "timestamp": ts,
            "ttl_s": doc.ttl_s,
            "expires_at": ts + doc.ttl_s,
            "stale": False,
            "ingested_at": now,
        }
        key = (RagDocument.collection == collection) & (RagDocument.doc_id == doc.id)
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(RagDocument).where(key).values(**values)).rowcount
            if not updated:
                conn.execute(sa.insert(RagDocument).values(collection=collection, doc_id=doc.id, **values))

    def flag_stale(self, collection: str, now: float | None = None) -> list[str]:
        """Mark every document past its time-to-live as stale; returns all stale ids."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(RagDocument)
                .where(RagDocument.collection == collection, RagDocument.expires_at <= now)
                .values(stale=True)
            )
        ids = self.stale(collection)
        log.info("%s: %d stale documents", collection, len(ids))
        return ids

    def expired_unflagged(self, collection: str, now: float) -> list[str]:
        """Ids past their time-to-live and not flagged yet (``flag_stale`` at ``now`` will flag these)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(RagDocument.doc_id)
                .where(
                    RagDocument.collection == collection,
                    RagDocument.expires_at <= now,
                    RagDocument.stale.is_(False),
                )
                .order_by(RagDocument.doc_id)
            )
            return [r[0] for r in rows]

    def stale(self, collection: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(RagDocument.doc_id)
                .where(RagDocument.collection == collection, RagDocument.stale.is_(True))
                .order_by(RagDocument.doc_id)
            )
            return [r[0] for r in rows]

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        """The registry row of ``doc_id`` as a dict, or None."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(RagDocument.__table__).where(
                        RagDocument.collection == collection, RagDocument.doc_id == doc_id
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None
