"""Deployed circuit versions and the per-circuit enabled flag.

A deploy stores a new version (the YAML text as sent, its digest, who and when); nothing
is ever overwritten, so every version a run ran stays readable. Workers read the newest
version of each circuit (see ``workers.deployed``). The flag applies to file circuits too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base


class CircuitVersionRow(Base):
    __tablename__ = "circuit_versions"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_circuit_versions_name_version"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
    tenant: Mapped[str | None] = mapped_column(sa.String(100))  # None: every tenant
    version: Mapped[int] = mapped_column(sa.Integer)
    text: Mapped[str] = mapped_column(sa.Text)
    digest: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(sa.String(200))


class CircuitStateRow(Base):
    __tablename__ = "circuit_state"
    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(sa.String(200))


_VERSION_COLUMNS = ("name", "tenant", "version", "digest", "created_at", "created_by")


def latest_versions(engine: Engine) -> list[dict[str, Any]]:
    """The newest version of every deployed circuit, with its text."""
    t = CircuitVersionRow.__table__
    newest = sa.select(t.c.name, sa.func.max(t.c.version).label("v")).group_by(t.c.name).subquery()
    q = sa.select(*t.c).join(newest, sa.and_(t.c.name == newest.c.name, t.c.version == newest.c.v))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).fetchall()]


def versions(engine: Engine, name: str) -> list[dict[str, Any]]:
    """Every stored version of ``name``, newest first, without the text."""
    t = CircuitVersionRow.__table__
    q = sa.select(*(t.c[c] for c in _VERSION_COLUMNS)).where(t.c.name == name).order_by(t.c.version.desc())
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).fetchall()]


def add_version(
    engine: Engine, name: str, tenant: str | None, text: str, digest: str, created_by: str, at_least: int = 1
) -> int:
    """Store a new version of ``name``; returns its number (one more than the newest, and ``>= at_least``).

    Two deploys racing for the same number: the unique constraint refuses the second, which retries.
    """
    t = CircuitVersionRow.__table__
    for _ in range(5):
        try:
            with engine.begin() as conn:
                newest = conn.execute(sa.select(sa.func.max(t.c.version)).where(t.c.name == name)).scalar()
                number = max((newest or 0) + 1, at_least)
                conn.execute(
                    sa.insert(t).values(
                        name=name,
                        tenant=tenant,
                        version=number,
                        text=text,
                        digest=digest,
                        created_at=datetime.now(UTC),
                        created_by=created_by,
                    )
                )
                return number
        except sa.exc.IntegrityError:
            continue
    raise RuntimeError(f"could not store a version of {name!r}: too many concurrent deploys")


def states(engine: Engine) -> dict[str, bool]:
    """Circuit name -> enabled, for circuits whose flag was ever set."""
    t = CircuitStateRow.__table__
    with engine.connect() as conn:
        return {r.name: bool(r.enabled) for r in conn.execute(sa.select(t.c.name, t.c.enabled)).fetchall()}


def set_enabled(engine: Engine, name: str, enabled: bool, by: str) -> None:
    t = CircuitStateRow.__table__
    values = {"name": name, "enabled": enabled, "updated_at": datetime.now(UTC), "updated_by": by}
    with engine.begin() as conn:
        done = conn.execute(sa.update(t).where(t.c.name == name).values(**values)).rowcount
        if not done:
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(t).values(**values))
            except sa.exc.IntegrityError:  # set at the same moment by someone else: ours is the later write
                conn.execute(sa.update(t).where(t.c.name == name).values(**values))
