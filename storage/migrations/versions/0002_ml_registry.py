"""ML model registry: model versions, promotion decisions, recorded outcomes.

Revision ID: 0002_ml_registry
Revises: 0001_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ml_registry"
down_revision = "0001_base"
branch_labels = ("ml",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ml_model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("engine", sa.String(50), nullable=False),
        sa.Column("estimator", sa.String(100), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("feature_schema", sa.JSON, nullable=False),
        sa.Column("train_spec", sa.JSON, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("train_seconds", sa.Float, nullable=False),
        sa.Column("artifact_path", sa.String(500), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("run_key", sa.String(200), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_ml_model_versions_name_version"),
    )
    op.create_index("ix_ml_model_versions_name_status", "ml_model_versions", ["name", "status"])
    op.create_index("ix_ml_model_versions_run_key", "ml_model_versions", ["run_key"])
    op.create_table(
        "ml_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("run_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ml_decisions_name", "ml_decisions", ["name"])
    op.create_table(
        "ml_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("label", sa.SmallInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model", "record_id", name="uq_ml_outcomes_model_record"),
    )


def downgrade() -> None:
    op.drop_table("ml_outcomes")
    op.drop_index("ix_ml_decisions_name", table_name="ml_decisions")
    op.drop_table("ml_decisions")
    op.drop_index("ix_ml_model_versions_run_key", table_name="ml_model_versions")
    op.drop_index("ix_ml_model_versions_name_status", table_name="ml_model_versions")
    op.drop_table("ml_model_versions")
