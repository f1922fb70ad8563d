"""Apply the Alembic migrations shipped in ``storage/migrations`` to a database.

Each area (ledger, ml, rag) keeps its own branch from the base revision, so
``upgrade`` targets ``heads``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema of every area."""
    command.upgrade(alembic_config(engine), "heads")
