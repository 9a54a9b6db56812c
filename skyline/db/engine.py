"""SQLAlchemy engines for SQLite (the embedded default) and MySQL/MariaDB (PyMySQL).

``make_engine`` builds an engine without connecting; ``wait_for_db`` is what a
daemon calls at start: it retries until the database answers, so a database
that is down or still starting delays a daemon instead of killing it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from skyline.settings import Settings

BACKOFF_START = 0.5
#: Recycle MySQL connections well before the server's wait_timeout (8 h) drops them.
MYSQL_POOL_RECYCLE = 1800
#: Default PyMySQL read/write timeout ([database] io_timeout): without one a server
#: that stops answering (frozen, black-holed) hangs the caller for ever.
IO_TIMEOUT = 60


#: MySQL/MariaDB server errors (1000-1999) that mean "the server cannot serve now"
#: rather than "this statement or its data is wrong": connections, privileges (an
#: operator fixes them while the daemon waits), locks, shutdown, a killed query.
#: Client errors (2000 and up: cannot connect, server gone, lost connection) are all
#: outages.  Any other server error is about the statement's data.
MYSQL_OUTAGE_CODES = frozenset({
    1040, 1041, 1042, 1043, 1044, 1045, 1053, 1077, 1129, 1130, 1152, 1153, 1154, 1155,
    1156, 1157, 1158, 1159, 1160, 1161, 1184, 1203, 1205, 1213, 1226, 1317, 1836, 1874,
    1927, 1969,
})  # fmt: skip


class DatabaseUnavailable(Exception):
    """The database could not be reached before the caller gave up (``stop`` was set)."""


def _prepare_sqlite_path(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (see
    # _sqlite_on_begin) so that DDL in migrations is transactional too.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE: take the write lock at the start, so that concurrent writers (daemon
    # threads) wait for each other for up to the busy timeout.  A DEFERRED transaction
    # that reads and then writes fails at once with "database is locked" when another
    # connection wrote meanwhile, because SQLite cannot upgrade its stale snapshot.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_engine(url: URL, connect_timeout: int) -> Engine:
    _prepare_sqlite_path(url)
    engine = create_engine(url, connect_args={"timeout": connect_timeout})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def mysql_outage(code: int) -> bool:
    """Whether a MySQL/MariaDB error number means the service, not the data."""
    return code >= 2000 or code < 1000 or code in MYSQL_OUTAGE_CODES


def _classify_mysql_error(context: ExceptionContext) -> DBAPIError | None:
    """Turn an OperationalError caused by the statement's data (error 1267, a collation
    mismatch on a non-ASCII filter) into a DataError, so that it is not taken for an
    outage (``skyline.runtime.daemon.OUTAGES``) and retried for ever."""
    exc = context.sqlalchemy_exception
    if not isinstance(exc, OperationalError) or context.is_disconnect:
        return None
    args = getattr(context.original_exception, "args", ())
    code = args[0] if args and isinstance(args[0], int) else 0
    if mysql_outage(code):
        return None
    return DataError(exc.statement, exc.params, context.original_exception)


def _mysql_engine(url: URL, connect_timeout: int, io_timeout: int) -> Engine:
    if "+" not in url.drivername:
        url = url.set(drivername=f"{url.drivername}+pymysql")
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=MYSQL_POOL_RECYCLE,
        connect_args={
            "charset": "utf8mb4",
            "connect_timeout": connect_timeout,
            "read_timeout": io_timeout,
            "write_timeout": io_timeout,
        },  # fmt: skip
    )
    event.listen(engine, "handle_error", _classify_mysql_error, retval=True)
    return engine


def make_engine(url: str, connect_timeout: int = 10, io_timeout: int = IO_TIMEOUT) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``mysql+pymysql://...``); does not connect.

    SQLite: creates the file's parent directory, enforces foreign keys and uses
    WAL journaling.  MySQL/MariaDB: PyMySQL (also for a bare ``mysql://`` URL),
    utf8mb4, pre-ping and recycling of pooled connections, read/write timeouts
    (``io_timeout``), and data errors told from outages (``_classify_mysql_error``).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, connect_timeout)
    if backend in ("mysql", "mariadb"):
        return _mysql_engine(parsed, connect_timeout, io_timeout)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST/DB"
    )


def engine_for(settings: Settings) -> Engine:
    """``make_engine`` for the configured database (``database_url`` and ``[database]``
    timeouts); does not connect."""
    return make_engine(
        settings.database_url, settings.database.connect_timeout, settings.database.io_timeout
    )


def _reason(exc: DBAPIError, password: str | None) -> str:
    """One line saying why a connection failed, without the password."""
    reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
    if password:
        reason = reason.replace(password, "***")
    return reason[:300]


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


class StopFlag(Protocol):
    """What ``wait_for_db`` asks of its ``stop`` (a ``threading.Event`` will do)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def wait_for_db(
    url: str,
    *,
    backoff_max: float = 30.0,
    stop: StopFlag | None = None,
    log: logging.Logger,
    connect_timeout: int = 10,
    io_timeout: int = IO_TIMEOUT,
) -> Engine:
    """Connect to ``url`` (``SELECT 1``), retrying with exponential backoff until it answers.

    Waits 0.5 s after the first failure, doubling up to ``backoff_max``, and logs
    one warning per failure (the URL with its password hidden).  Retries forever
    unless ``stop`` is set, which makes it raise ``DatabaseUnavailable``.
    """
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    engine = make_engine(url, connect_timeout=connect_timeout, io_timeout=io_timeout)
    delay = min(BACKOFF_START, backoff_max)
    attempt = 0
    while stop is None or not stop.is_set():
        attempt += 1
        try:
            _ping(engine)
        except DBAPIError as exc:
            engine.dispose()
            log.warning(
                "database %s unreachable (attempt %d): %s; retrying in %.1f s",
                shown,
                attempt,
                _reason(exc, parsed.password),
                delay,
            )
        else:
            if attempt > 1:
                log.info("database %s reachable after %d attempts", shown, attempt)
            return engine
        if stop is not None:
            stop.wait(delay)
        else:
            time.sleep(delay)
        delay = min(delay * 2, backoff_max)
    engine.dispose()
    raise DatabaseUnavailable(f"gave up waiting for database {shown}")
