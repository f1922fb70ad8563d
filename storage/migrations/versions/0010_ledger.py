"""Run ledger: events, rejected events, runs, steps.

Revision ID: 0010_ledger
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_ledger"
down_revision = "0001_base"
branch_labels = ("ledger",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "circuit_events",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("type", sa.String(200), nullable=False, index=True),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("time", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("data", sa.JSON),
        sa.Column("runs_started", sa.Integer, nullable=False),
    )
    op.create_table(
        "circuit_rejected_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", TS, nullable=False, index=True),
        sa.Column("origin", sa.String(50), nullable=False),
        sa.Column("field", sa.String(200)),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_table(
        "circuit_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("circuit", sa.String(100), index=True),
        sa.Column("circuit_version", sa.String(40)),
        sa.Column("event_id", sa.String(200), index=True),
        sa.Column("event_type", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("started_at", TS, index=True),
        sa.Column("ended_at", TS),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "circuit_steps",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("step_id", sa.String(200), primary_key=True),
        sa.Column("action", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("duration_ms", sa.Float),
        sa.Column("output", sa.JSON),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    for table in ("circuit_steps", "circuit_runs", "circuit_rejected_events", "circuit_events"):
        op.drop_table(table)
