"""Import a CSV of ``timestamp,value`` into one metric, by the route pulled points take
(``skyline import FILE.csv --metric NAME`` and the webapp's upload form)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np

from skyline.ingest.vista.route import deliver
from skyline.settings import Settings
from skyline.store.datapoint import check_name
from skyline.store.timeseries import TimeSeriesStore

MAX_IMPORT_POINTS = 10_000_000


def read_csv(lines: Iterable[str], where: str = "csv") -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, values) of ``timestamp,value`` rows (epoch seconds or ISO 8601, naive
    meaning UTC); a first row that is not numbers is a header; ``#`` starts a comment."""
    ts: list[float] = []
    vs: list[float] = []
    try:
        _read_rows(csv.reader(lines), where, ts, vs)
    except csv.Error as exc:  # a field over csv's limit (128 KB), a NUL byte
        raise ValueError(f"{where}: not a CSV file of timestamp,value rows: {exc}") from None
    return np.asarray(ts, dtype=np.float64), np.asarray(vs, dtype=np.float64)


def _read_rows(reader: Iterable[list[str]], where: str, ts: list[float],
               vs: list[float]) -> None:  # fmt: skip
    for n, row in enumerate(reader, 1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) < 2:
            raise ValueError(f"{where}:{n}: expected timestamp,value")
        try:
            t, v = _time(row[0].strip()), float(row[1])
        except ValueError:
            if n == 1:
                continue  # a header
            raise ValueError(f"{where}:{n}: not a timestamp,value row: {row[:2]}") from None
        ts.append(t)
        vs.append(v)
        if len(ts) > MAX_IMPORT_POINTS:
            raise ValueError(f"{where}: more than {MAX_IMPORT_POINTS} rows")


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        t = dt.datetime.fromisoformat(text)
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def import_points(
    store: TimeSeriesStore, settings: Settings, metric: str, t: np.ndarray, v: np.ndarray,
    now: float,
) -> dict[str, Any]:  # fmt: skip
    """Store the points the metric lacks: the last day live (judged in order by the
    analyzer), older into the rollups.  Returns the counts."""
    reason = check_name(metric)
    if reason:
        raise ValueError(f"metric name {metric[:80]!r}: {reason}")
    have = store.read(metric).timestamps
    fresh = ~np.isin(np.floor(t).astype(np.int64), have.astype(np.int64))  # never twice
    d = deliver(store, settings, {metric: (t[fresh], v[fresh])}, now)
    return {"metric": metric, "rows": len(t), "live": d.live, "rolled_up": d.rolled,
            "already_stored": int((~fresh).sum()), "rejected": dict(d.rejected)}  # fmt: skip
