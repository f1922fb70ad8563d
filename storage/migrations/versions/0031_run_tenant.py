"""Runs and dead letters carry their tenant, so every query can be scoped by it.

Revision ID: 0031_run_tenant
Revises: 0030_circuits_api
Depends on: 0011_run_parent (the ledger tables)

Existing runs take the tenant of the event that started them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_run_tenant"
down_revision = "0030_circuits_api"
branch_labels = None
depends_on = "0011_run_parent"


def upgrade() -> None:
    with op.batch_alter_table("circuit_runs") as batch:
        batch.add_column(sa.Column("tenant", sa.String(100), nullable=True))
        batch.create_index("ix_circuit_runs_tenant", ["tenant"])
    with op.batch_alter_table("circuit_rejected_events") as batch:
        batch.add_column(sa.Column("tenant", sa.String(100), nullable=True))
    op.execute(
        "UPDATE circuit_runs SET tenant = (SELECT e.tenant FROM circuit_events e WHERE e.id = circuit_runs.event_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("circuit_rejected_events") as batch:
        batch.drop_column("tenant")
    with op.batch_alter_table("circuit_runs") as batch:
        batch.drop_index("ix_circuit_runs_tenant")
        batch.drop_column("tenant")
