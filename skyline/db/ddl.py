"""The MySQL/MariaDB DDL of the models, as kept in ``sql/skyline.sql``.

Regenerate after changing the models (and adding a migration)::

    python -m skyline.db.ddl > sql/skyline.sql

A test fails while the file and the models disagree.  The DDL also creates
alembic's version table at the head revision, so a database created from the
file can later be migrated with ``skyline db upgrade``.
"""

from __future__ import annotations

import sys

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, insert
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateIndex, CreateTable

from skyline.db.migrate import head_revision
from skyline.db.models import MYSQL_TABLE_OPTIONS, Base

HEADER = """\
-- Skyline SQL schema for MySQL/MariaDB (InnoDB, utf8mb4).
-- GENERATED from skyline/db/models.py by `python -m skyline.db.ddl > sql/skyline.sql`:
-- do not edit by hand.  Times are UTC epoch seconds (BIGINT).
-- A database created from this file is at migration revision {revision};
-- `skyline db upgrade` creates the same schema in an empty database.
"""


def _statement(clause: object) -> str:
    compiled = clause.compile(dialect=mysql.dialect())  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in str(compiled).strip().splitlines()]
    return "\n".join(lines) + ";"


def _version_table(revision: str) -> list[str]:
    """Alembic's own version table, stamped at ``revision``."""
    table = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
        **MYSQL_TABLE_OPTIONS,
    )
    stamp = insert(table).values(version_num=revision)
    compiled = stamp.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True})
    return [_statement(CreateTable(table)), f"{compiled};"]


def render_mysql_ddl() -> str:
    """CREATE TABLE and CREATE INDEX statements of every model, in dependency order."""
    revision = head_revision()
    parts = [HEADER.format(revision=revision)]
    for table in Base.metadata.sorted_tables:
        statements = [_statement(CreateTable(table))]
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            statements.append(_statement(CreateIndex(index)))
        parts.append("\n".join(statements) + "\n")
    parts.append("\n".join(_version_table(revision)) + "\n")
    return "\n".join(parts)


def main() -> None:
    sys.stdout.write(render_mysql_ddl())


if __name__ == "__main__":
    main()
