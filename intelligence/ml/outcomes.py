"""Outcomes from real life become labels: the learning loop's extra training rows.

A lead that converted or was lost, a customer who churned or stayed: each is stored once
per (model, record id), so recording the same outcome twice (a retried step) is harmless.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from circuits.errors import PermanentError
from intelligence.ml.tables import Outcome, utcnow

POSITIVE = {"1", "true", "yes", "y", "converted", "won", "churned", "positive"}
NEGATIVE = {"0", "false", "no", "n", "lost", "retained", "stayed", "negative"}


def outcome_label(value: Any) -> int:
    """1 for converted/churned/yes/true/1, 0 for lost/retained/no/false/0."""
    text = str(value).strip().lower()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if text in POSITIVE:
        return 1
    if text in NEGATIVE:
        return 0
    raise PermanentError(f"outcome {value!r} is not understood; use one of {sorted(POSITIVE)} or {sorted(NEGATIVE)}")


def record_outcome(engine: Engine, model: str, record_id: str, features: dict[str, Any], outcome: Any) -> bool:
    """Store (or update) one labelled row; returns True when it was new."""
    label = outcome_label(outcome)
    with Session(engine) as s, s.begin():
        row = s.scalar(sa.select(Outcome).where(Outcome.model == model, Outcome.record_id == record_id))
        if row is not None:
            row.features, row.label, row.updated_at = features, label, utcnow()
            return False
        now = utcnow()
        s.add(Outcome(model=model, record_id=record_id, features=features, label=label, created_at=now, updated_at=now))
        return True


def count_outcomes(engine: Engine, model: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).where(Outcome.model == model)) or 0)


def outcomes_frame(engine: Engine, model: str) -> Any:
    """Recorded outcomes of ``model`` as a DataFrame: feature columns, ``_y`` and ``_key``."""
    import pandas as pd

    with Session(engine) as s:
        rows = s.execute(
            sa.select(Outcome.record_id, Outcome.features, Outcome.label)
            .where(Outcome.model == model)
            .order_by(Outcome.id)
        ).all()
    frame = pd.DataFrame([r.features for r in rows])
    frame["_y"] = [r.label for r in rows]
    frame["_key"] = [r.record_id for r in rows]
    return frame
