"""RAG: the document registry (freshness, re-ingest) and the feedback signals.

Revision ID: 0003_rag
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_rag"
down_revision = "0001_base"
branch_labels = ("rag",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rag_documents",
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("doc_id", sa.String(256), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("source_uri", sa.Text(), nullable=False, server_default=""),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("authority", sa.Float(), nullable=False, server_default="0.5"),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("ttl_s", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("ingested_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_rag_documents_expires", "rag_documents", ["collection", "expires_at"])
    op.create_table(
        "rag_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("collection", sa.String(128), nullable=False),
        sa.Column("query", sa.Text(), nullable=False, server_default=""),
        sa.Column("doc_id", sa.String(256), nullable=False),
        sa.Column("chunk_id", sa.String(300), nullable=False, server_default=""),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_rag_feedback_doc", "rag_feedback", ["collection", "doc_id"])


def downgrade() -> None:
    op.drop_index("ix_rag_feedback_doc", table_name="rag_feedback")
    op.drop_table("rag_feedback")
    op.drop_index("ix_rag_documents_expires", table_name="rag_documents")
    op.drop_table("rag_documents")
