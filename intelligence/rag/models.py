"""Tables of the RAG area (schema owned by migration ``0003_rag``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base


class RagDocument(Base):
    """One ingested document: where it came from and when it goes stale."""

    __tablename__ = "rag_documents"

    collection: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    doc_id: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text(), default="")
    source_uri: Mapped[str] = mapped_column(sa.Text(), default="")
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    chunks: Mapped[int] = mapped_column(sa.Integer(), default=0)
    authority: Mapped[float] = mapped_column(sa.Float(), default=0.5)
    timestamp: Mapped[float] = mapped_column(sa.Float())
    ttl_s: Mapped[float] = mapped_column(sa.Float())
    expires_at: Mapped[float] = mapped_column(sa.Float())
    stale: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    ingested_at: Mapped[float] = mapped_column(sa.Float())


class RagFeedback(Base):
    """One explicit (thumbs up/down) or implicit (click, dwell, citation) signal on a result."""

    __tablename__ = "rag_feedback"

    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    collection: Mapped[str] = mapped_column(sa.String(128))
    query: Mapped[str] = mapped_column(sa.Text(), default="")
    doc_id: Mapped[str] = mapped_column(sa.String(256))
    chunk_id: Mapped[str] = mapped_column(sa.String(300), default="")
    signal: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[float] = mapped_column(sa.Float())
    run_id: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[float] = mapped_column(sa.Float())
