"""One declarative base and one way to make engines, so Alembic sees every table.

PostgreSQL (through psycopg 3) in production, SQLite as the embedded default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase

from circuits.errors import ConfigError


class Base(DeclarativeBase):
    """Base of every table Circuit OS owns."""


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so a worker and the CLI can share it."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"CIRCUIT_DATABASE_URL: not a database URL: {url!r} ({exc})") from None
    if parsed.drivername == "postgresql":  # plain postgresql:// means psycopg 3 here, not psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kw.setdefault("connect_args", {"timeout": 30})
        engine = sa.create_engine(parsed, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kw.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kw)
