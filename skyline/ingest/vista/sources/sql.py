"""SQL through SQLAlchemy: PostgreSQL, MariaDB/MySQL, SQLite (any dialect installed).

The query returns the columns ``ts`` and ``value``, and optionally ``name``: one
query may yield many metrics (one per distinct name; without the column the
source's one metric is called ``value``).  The columns named in
``options.label_columns`` are labels: each distinct label set is its own metric,
named ``<name>.<label>=<value>...`` (skyline.store.labels; a NULL or empty value
leaves the label out) and keeping its label set in the label index.
``options.missing_ok`` makes a table that does not exist yet answer no rows (the
demo's source, whose table appears when ``skyline demo`` runs).  ``:start`` and ``:end`` are bound to the
window asked, so the query should select ``ts > :start AND ts <= :end``.

Time zones are explicit: ``options.time_type`` says whether ``ts`` is a datetime
(``datetime``, the default) or epoch seconds (``epoch``); naive datetimes, both
those read and the bounds bound, are in ``options.timezone`` (default UTC).

The fetch is bounded by a statement timeout set per dialect (PostgreSQL
``statement_timeout``, MariaDB ``max_statement_time``, MySQL
``max_execution_time``, SQLite a progress handler that interrupts the query) and
by reading at most ``max_points + 1`` rows.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from decimal import Decimal
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
import sqlalchemy.exc
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import URL, make_url

from skyline.ingest.vista.sources import (
    SOURCES,
    PulledSeries,
    Source,
    SourceError,
    expand_env,
)
from skyline.settings.vista import VistaSource
from skyline.store.labels import flatten, label_set

FETCH_ROWS = 10000


class SqlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_type: Literal["datetime", "epoch"] = "datetime"
    timezone: str = Field("UTC", min_length=1)
    label_columns: list[str] = Field(default_factory=list, max_length=32)
    missing_ok: bool = False  # a table that does not exist (yet) answers no rows


@SOURCES.register("sql")
class Sql(Source):
    kind = "sql"
    Options = SqlOptions
    # a row is often written a little after its ts: re-ask 5 minutes, keep what is new
    overlap: ClassVar[float] = 300.0

    def __init__(self, cfg: VistaSource, options: Any) -> None:
        super().__init__(cfg, options)
        self.tz = ZoneInfo(options.timezone)
        url: URL = make_url(expand_env(cfg.url))
        if cfg.password_env:
            url = url.set(password=expand_env("${" + cfg.password_env + "}"))
        self.dialect = url.get_backend_name()
        connect_args: dict[str, Any] = {}
        if self.dialect == "mysql" and url.get_driver_name() == "pymysql":
            connect_args = {"read_timeout": int(cfg.timeout) + 1, "connect_timeout": 10}
        elif self.dialect == "postgresql" and url.get_driver_name() == "pg8000":
            connect_args = {"timeout": int(cfg.timeout) + 1}
        self.engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        self.query = sa.text(cfg.query)

    def fetch(self, start: float, end: float) -> list[PulledSeries]:
        params = {"start": self._bound(start), "end": self._bound(end)}
        try:
            with self.engine.connect() as conn:
                self._limit_time(conn)
                result = conn.execute(self.query, params)
                columns = list(result.keys())
                rows = self._read(result)
        except SourceError:
            raise
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if self.options.missing_ok and _is_missing_table(exc):
                return []
            if _is_timeout(exc):
                raise SourceError("timeout", f"query ran past {self.cfg.timeout:g}s") from None
            reason = "unreachable" if isinstance(exc, sqlalchemy.exc.InterfaceError) else "query"
            raise SourceError(reason, _message(exc)) from None
        return self._series(columns, rows)

    def _read(self, result: sa.CursorResult[Any]) -> list[Any]:
        rows: list[Any] = []
        while True:
            batch = result.fetchmany(FETCH_ROWS)
            if not batch:
                return rows
            rows.extend(batch)
            self.check_size(len(rows))

    def _limit_time(self, conn: sa.Connection) -> None:
        ms = int(self.cfg.timeout * 1000)
        if self.dialect == "postgresql":
            conn.execute(
                sa.text("SELECT set_config('statement_timeout', :v, false)"), {"v": str(ms)}
            )
        elif self.dialect in ("mysql", "mariadb"):
            if "mariadb" in str(conn.execute(sa.text("SELECT VERSION()")).scalar()).lower():
                conn.execute(sa.text("SET SESSION max_statement_time = :v"), {"v": ms / 1000})
            else:
                conn.execute(sa.text("SET SESSION max_execution_time = :v"), {"v": ms})
        elif self.dialect == "sqlite":
            dbapi = conn.connection.dbapi_connection
            stop_at = time.monotonic() + self.cfg.timeout
            dbapi.set_progress_handler(lambda: int(time.monotonic() > stop_at), 10000)  # type: ignore[union-attr]

    def _bound(self, t: float) -> Any:
        if self.options.time_type == "epoch":
            return t
        # naive, in the source's time zone, as the table's naive datetimes are
        return dt.datetime.fromtimestamp(t, self.tz).replace(tzinfo=None)

    def _series(self, columns: list[str], rows: list[Any]) -> list[PulledSeries]:
        lower = [c.lower() for c in columns]
        if "ts" not in lower or "value" not in lower:
            raise SourceError(
                "malformed", f"the query must return columns ts and value, not {', '.join(columns)}"
            )
        i_ts, i_v = lower.index("ts"), lower.index("value")
        i_name = lower.index("name") if "name" in lower else None
        missing = [c for c in self.options.label_columns if c.lower() not in lower]
        if missing:
            raise SourceError("malformed", f"label column(s) {', '.join(missing)} not returned")
        i_labels = [(c, lower.index(c.lower())) for c in self.options.label_columns]
        grouped: dict[str, tuple[list[float], list[float]]] = {}
        label_sets: dict[str, dict[str, str]] = {}
        for row in rows:
            if i_name is not None and row[i_name] is None:
                self.rejected["name_missing"] += 1  # a NULL name would be the metric "None"
                continue
            name = str(row[i_name]) if i_name is not None else "value"
            if i_labels:
                labels = {c: str(row[i]) for c, i in i_labels if row[i] is not None}
                base, name = name, flatten(name, labels)
                if name not in label_sets:
                    label_sets[name] = label_set(base, labels)
            ts = self._epoch(row[i_ts])
            value = _float(row[i_v])
            entry = grouped.setdefault(name, ([], []))
            entry[0].append(ts)
            entry[1].append(value)
        return [
            PulledSeries(
                name,
                np.asarray(ts, dtype=np.float64),
                np.asarray(vs, dtype=np.float64),
                label_sets.get(name),
            )  # fmt: skip
            for name, (ts, vs) in grouped.items()
        ]

    def _epoch(self, value: Any) -> float:
        """A row's time in epoch seconds; NaN when it is none (NULL, text that is no
        time): that row alone is refused and counted (``timestamp_not_numeric``)."""
        if isinstance(value, dt.datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=self.tz)
            return aware.timestamp()
        if isinstance(value, str):
            try:
                return self._epoch(dt.datetime.fromisoformat(value))
            except ValueError:
                return math.nan
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return math.nan

    def close(self) -> None:
        super().close()
        self.engine.dispose()


def _float(value: Any) -> float:
    if isinstance(value, Decimal):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _is_missing_table(exc: BaseException) -> bool:
    """SQLite's "no such table", MariaDB's "Table ... doesn't exist", PostgreSQL's
    "relation ... does not exist"."""
    text = str(exc).lower()
    return (
        "no such table" in text
        or ("table" in text and "doesn't exist" in text)
        or ("relation" in text and "does not exist" in text)
    )


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        word in text
        for word in ("interrupted", "statement timeout", "max_statement_time", "timed out",
                     "maximum statement execution time", "canceling statement", "timeout")
    )  # fmt: skip


def _message(exc: sqlalchemy.exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    first = orig.args[0] if orig is not None and orig.args else None
    if isinstance(first, dict) and "M" in first:  # pg8000's error fields
        text = str(first["M"])
    else:
        text = str(orig) if orig is not None else str(exc).split("\n")[0]
    return " ".join(text.split())[:300]
