"""Runs started by a ``call`` step name their parent run.

Revision ID: 0011_run_parent
Revises: 0010_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_run_parent"
down_revision = "0010_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("circuit_runs") as batch:
        batch.add_column(sa.Column("parent_run_id", sa.String(64), nullable=True))
        batch.create_index("ix_circuit_runs_parent_run_id", ["parent_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("circuit_runs") as batch:
        batch.drop_index("ix_circuit_runs_parent_run_id")
        batch.drop_column("parent_run_id")
