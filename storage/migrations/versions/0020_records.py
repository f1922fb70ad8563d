"""Records: CRM objects (lead, account, contact, opportunity, activity) and their event outbox.

Revision ID: 0020_records
Revises: 0001_base

Columns are spelled out here (not imported from integrations.records.schema), so this
revision stays what it was when the schema module changes; a test checks they agree.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_records"
down_revision = "0001_base"
branch_labels = ("records",)
depends_on = None

TS = sa.DateTime(timezone=True)


def _s(name: str, length: int = 200) -> sa.Column:
    return sa.Column(name, sa.String(length))


PERSON = [lambda: _s("email", 320), lambda: _s("first_name", 100), lambda: _s("last_name", 100)]

OBJECTS = {
    "crm_leads": lambda: [
        *(f() for f in PERSON),
        _s("company"),
        _s("title"),
        _s("phone", 50),
        _s("status", 50),
        sa.Column("score", sa.Float),
        _s("source", 100),
        _s("owner"),
    ],
    "crm_accounts": lambda: [
        _s("name"),
        _s("domain"),
        _s("industry", 100),
        sa.Column("employees", sa.BigInteger),
        sa.Column("annual_revenue", sa.Float),
        _s("phone", 50),
        _s("owner"),
    ],
    "crm_contacts": lambda: [
        _s("account_id", 64),
        *(f() for f in PERSON),
        _s("title"),
        _s("phone", 50),
        _s("owner"),
    ],
    "crm_opportunities": lambda: [
        _s("account_id", 64),
        _s("name"),
        _s("stage", 50),
        sa.Column("amount", sa.Float),
        sa.Column("probability", sa.Float),
        sa.Column("close_date", sa.Date),
        _s("owner"),
    ],
    "crm_activities": lambda: [
        _s("kind", 50),
        _s("subject", 500),
        _s("status", 50),
        sa.Column("due_at", TS),
        _s("related_object", 50),
        _s("related_id", 64),
        _s("owner"),
        sa.Column("notes", sa.Text),
    ],
}


def upgrade() -> None:
    for table, fields in OBJECTS.items():
        op.create_table(
            table,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant", sa.String(100), nullable=False),
            sa.Column("external_id", sa.String(200)),
            *fields(),
            sa.Column("custom", sa.JSON, nullable=False),
            sa.Column("created_at", TS, nullable=False),
            sa.Column("updated_at", TS, nullable=False),
            sa.UniqueConstraint("tenant", "external_id", name=f"uq_{table}_external_id"),
        )
        op.create_index(f"ix_{table}_tenant", table, ["tenant"])
    op.create_table(
        "crm_outbox",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("envelope", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_index("ix_crm_outbox_unsent", "crm_outbox", ["sent_at", "created_at"])


def downgrade() -> None:
    op.drop_table("crm_outbox")
    for table in reversed(list(OBJECTS)):
        op.drop_table(table)
