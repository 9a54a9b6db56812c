"""Versioned schema migrations (alembic), run from the installed package.

No ``alembic.ini`` is needed or read: the alembic configuration is built here,
pointing at ``skyline/db/migrations``.  ``skyline db upgrade`` calls
``upgrade``; daemons call ``check_current`` at start and refuse to run against
a schema older (or newer) than their code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from skyline.db.engine import engine_for, make_engine
from skyline.db.models import Base
from skyline.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(Exception):
    """The database schema is not at the revision this code expects."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic ``Config`` for Skyline's migrations, optionally bound to ``connection``.

    ``env.py`` runs the migrations on ``connection`` when one is given, otherwise on
    an engine for the ``sqlalchemy.url`` main option.
    """
    config = Config()
    # ConfigParser interpolates '%', so escape it in the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (creating the schema if empty)."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def check_current(engine: Engine) -> None:
    """Raise ``SchemaOutOfDate`` unless the database is at the head revision."""
    current = current_revision(engine)
    expected = head_revision()
    if current != expected:
        at = f"revision {current}" if current else "no revision (empty or unmigrated database)"
        raise SchemaOutOfDate(
            f"database schema is at {at} but this Skyline expects revision {expected}: "
            "run `skyline db upgrade`"
        )


def current_engine(settings: Settings) -> Engine:
    """An engine for the configured database; ``SchemaOutOfDate`` unless it is at head."""
    engine = engine_for(settings)
    check_current(engine)
    return engine


def schema_diff(engine: Engine) -> list[Any]:
    """Differences between the database's schema and the models (empty when equal).

    Alembic autogenerate's comparison: tables, columns, types, nullability, server
    defaults, indexes, unique constraints and foreign keys.
    """
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))
