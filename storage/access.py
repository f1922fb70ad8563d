"""API keys (stored hashed) and the audit log of who changed what, and when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base


class ApiKeyRow(Base):
    """An API key: its public id, and the salted SHA-256 of its secret part (never the secret)."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(100), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    salt: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class AuditRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    tenant: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(50))
    target: Mapped[str] = mapped_column(sa.String(300))
    detail: Mapped[Any] = mapped_column(sa.JSON)


_KEY_COLUMNS = ("id", "tenant", "role", "name", "created_at", "created_by", "revoked_at")


def add_key(engine: Engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(ApiKeyRow.__table__).values(**row, created_at=datetime.now(UTC)))


def get_key(engine: Engine, key_id: str) -> dict[str, Any] | None:
    """The key's row, with salt and hash (for checking a presented key only)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(*ApiKeyRow.__table__.c).where(ApiKeyRow.id == key_id)).first()
    return dict(row._mapping) if row else None


def list_keys(engine: Engine, tenant: str | None = None) -> list[dict[str, Any]]:
    """Keys without their salt and hash, newest first; ``tenant`` None means every tenant."""
    t = ApiKeyRow.__table__
    q = sa.select(*(t.c[c] for c in _KEY_COLUMNS)).order_by(t.c.created_at.desc())
    if tenant is not None:
        q = q.where(t.c.tenant == tenant)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).fetchall()]


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke; False if there is no such key. Revoking twice keeps the first time."""
    t = ApiKeyRow.__table__
    with engine.begin() as conn:
        if conn.execute(sa.select(t.c.id).where(t.c.id == key_id)).first() is None:
            return False
        conn.execute(
            sa.update(t).where(t.c.id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))
        )
    return True


def add_audit(engine: Engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(AuditRow.__table__).values(**row, at=datetime.now(UTC)))


def list_audit(
    engine: Engine, *, tenant: str | None = None, limit: int = 100, before_id: int | None = None
) -> list[dict[str, Any]]:
    """Newest first; ``tenant`` None means every tenant, ``before_id`` pages on."""
    t = AuditRow.__table__
    q = sa.select(*t.c).order_by(t.c.id.desc()).limit(limit)
    if tenant is not None:
        q = q.where(t.c.tenant == tenant)
    if before_id is not None:
        q = q.where(t.c.id < before_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).fetchall()]
