"""Feedback loop: record explicit and implicit signals, turn them into a usefulness prior.

Explicit signals are a user's thumbs up/down; implicit ones come from behaviour (a
click, a long dwell, the answer citing the chunk, a result shown and skipped). Each
signal kind has a default value (positive helps, negative hurts) that a caller may
override. Usefulness of a document is the smoothed share of positive evidence,
``(PRIOR + pos) / (2 * PRIOR + pos + neg)``: 0.5 with no feedback, towards 1 or 0 with
more, so one stray click cannot dominate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from circuits.errors import PermanentError
from intelligence.rag.models import RagFeedback

log = logging.getLogger(__name__)

#: Default value of each signal kind; explicit votes weigh more than behaviour.
SIGNALS: dict[str, float] = {
    "up": 1.0,
    "down": -1.0,
    "click": 0.3,
    "dwell": 0.5,
    "cited": 0.4,
    "skip": -0.2,
}
EXPLICIT = frozenset({"up", "down"})
PRIOR = 2.0


class FeedbackStore:
    """Signals in the ``rag_feedback`` table, read back as per-document usefulness."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        collection: str,
        doc_id: str,
        signal: str,
        *,
        query: str = "",
        chunk_id: str = "",
        value: float | None = None,
        run_id: str = "",
    ) -> int:
        """Store one signal and return its row id; an unknown signal kind is a PermanentError."""
        if signal not in SIGNALS:
            raise PermanentError(f"unknown feedback signal {signal!r}; use one of {', '.join(SIGNALS)}")
        amount = SIGNALS[signal] if value is None else float(value)
        if run_id:  # a retried step must not count its signal twice
            with self.engine.connect() as conn:
                existing = conn.execute(
                    sa.select(RagFeedback.id).where(
                        RagFeedback.run_id == run_id,
                        RagFeedback.collection == collection,
                        RagFeedback.doc_id == doc_id,
                        RagFeedback.signal == signal,
                    )
                ).scalar()
            if existing is not None:
                return int(existing)
        row = {
            "collection": collection,
            "query": query,
            "doc_id": doc_id,
            "chunk_id": chunk_id,
            "signal": signal,
            "value": amount,
            "run_id": run_id,
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(RagFeedback).values(**row))
            new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        log.info("feedback %s on %s/%s (%+.2f)", signal, collection, doc_id, amount)
        return new_id

    def usefulness(self, collection: str, doc_ids: Iterable[str]) -> dict[str, float]:
        """Usefulness in (0, 1) for each of ``doc_ids``; 0.5 where there is no feedback."""
        ids = list(dict.fromkeys(doc_ids))
        scores = dict.fromkeys(ids, 0.5)
        if not ids:
            return scores
        pos = sa.func.sum(sa.case((RagFeedback.value > 0, RagFeedback.value), else_=0.0))
        neg = sa.func.sum(sa.case((RagFeedback.value < 0, -RagFeedback.value), else_=0.0))
        stmt = (
            sa.select(RagFeedback.doc_id, pos, neg)
            .where(RagFeedback.collection == collection, RagFeedback.doc_id.in_(ids))
            .group_by(RagFeedback.doc_id)
        )
        with self.engine.connect() as conn:
            for doc_id, p, n in conn.execute(stmt):
                scores[doc_id] = (PRIOR + float(p or 0)) / (2 * PRIOR + float(p or 0) + float(n or 0))
        return scores

    def count(self, collection: str) -> int:
        with self.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(RagFeedback).where(RagFeedback.collection == collection)
            return int(conn.execute(stmt).scalar_one())
