"""Registry tables: model versions, promotion decisions and recorded outcomes.

Created by the migration ``0002_ml_registry`` (branch ``ml``); keep the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base

CHAMPION, CHALLENGER, RETIRED = "champion", "challenger", "retired"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ModelVersion(Base):
    """One trained model: its metrics, data fingerprint, feature schema, file and status."""

    __tablename__ = "ml_model_versions"
    __table_args__ = (
        sa.UniqueConstraint("name", "version", name="uq_ml_model_versions_name_version"),
        sa.Index("ix_ml_model_versions_name_status", "name", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default=CHALLENGER)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    engine: Mapped[str] = mapped_column(sa.String(50))
    estimator: Mapped[str] = mapped_column(sa.String(100))
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    feature_schema: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    train_spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    data_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    n_rows: Mapped[int] = mapped_column(sa.Integer)
    train_seconds: Mapped[float] = mapped_column(sa.Float)
    artifact_path: Mapped[str] = mapped_column(sa.String(500))
    artifact_sha256: Mapped[str] = mapped_column(sa.String(64))
    run_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True, index=True)
    note: Mapped[str | None] = mapped_column(sa.Text, nullable=True)


class Decision(Base):
    """Why the champion changed or did not: promotions, refusals, rollbacks."""

    __tablename__ = "ml_decisions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    champion_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    run_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Outcome(Base):
    """A labelled example from real life (lead converted or lost, customer churned)."""

    __tablename__ = "ml_outcomes"
    __table_args__ = (sa.UniqueConstraint("model", "record_id", name="uq_ml_outcomes_model_record"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(sa.String(100))
    record_id: Mapped[str] = mapped_column(sa.String(200))
    features: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    label: Mapped[int] = mapped_column(sa.SmallInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
