"""The analysis behind ``skyline crucible``: read one series, run every algorithm on
its newest point, walk the ensemble forward over every earlier point, and build the
report (a JSON-ready dict).  No plotting and no argument parsing here.

Walk-forward: each point from index ``min_length - 1`` on is judged as if it were
the newest, on the points before it -- the last ``window`` points (by default as
many as ``full_duration`` seconds hold at the series' median step, at least
``min_length``), or all earlier points while fewer exist.  Windows are re-based so
that each ends at the series' last timestamp (every algorithm only looks at times
relative to the newest point, so this changes no verdict) and are evaluated in
chunks through the batch path.  Series with more than ``max_points`` points to
judge are sampled every ``k`` points (``walk.step`` in the report).
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from skyline import __version__
from skyline.analysis.algorithms.classic import Context, evaluate
from skyline.analysis.algorithms.custom import CustomRunner, run_many_with_custom
from skyline.analysis.algorithms.options import EnsembleOptions
from skyline.analysis.algorithms.prepare import prepare_arrays
from skyline.store.timeseries import Series

__all__ = ["CrucibleInputError", "SeriesInput", "analyse_series", "read_csv", "read_metric"]

CHUNK_ROWS = 1000
MAX_POINTS = 20000
MAX_BAD_EXAMPLES = 5


class CrucibleInputError(ValueError):
    """The input cannot be analysed; ``str()`` is one line saying why."""


@dataclass
class SeriesInput:
    """A series read for crucible, with what was dropped on the way."""

    series: Series
    kind: str  # "csv" | "metric"
    source: str
    rows: int = 0
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        s = self.series
        step = float(np.median(np.diff(s.timestamps))) if len(s) > 1 else None
        return {
            "kind": self.kind,
            "source": self.source,
            "rows": self.rows,
            "points": len(s),
            "bad_rows": self.bad_rows,
            "bad_row_examples": self.bad_examples,
            "first_timestamp": int(s.timestamps[0]),
            "last_timestamp": int(s.timestamps[-1]),
            "median_step": step,
        }


def parse_timestamp(text: str) -> float:
    """Epoch seconds, or an ISO date-time such as ``2015-07-10 14:24:00`` (UTC unless it
    carries an offset)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _parse_row(row: list[str]) -> tuple[float, float]:
    if len(row) < 2:
        raise ValueError("needs timestamp,value")
    ts, value = parse_timestamp(row[0]), float(row[1])
    if not (math.isfinite(ts) and math.isfinite(value)):
        raise ValueError("not finite")
    return ts, value


def read_csv(path: str | Path) -> SeriesInput:
    """Rows ``timestamp,value`` (a header row is optional).  Rows that do not parse, or
    hold NaN/inf, are skipped and counted; no valid row at all is an error."""
    p = Path(path)
    if not p.is_file():
        raise CrucibleInputError(f"{p}: no such file")
    try:
        with p.open(newline="", encoding="utf-8", errors="replace") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (OSError, csv.Error) as exc:
        raise CrucibleInputError(f"{p}: cannot read: {exc}") from None
    if not rows:
        raise CrucibleInputError(f"{p}: empty file; expected rows of timestamp,value")
    ts: list[float] = []
    vs: list[float] = []
    bad: list[str] = []
    header = int(len(rows[0]) >= 2 and not _numeric(rows[0][0]) and not _numeric(rows[0][1])
                 and not _is_time(rows[0][0]))  # fmt: skip
    for i, row in enumerate(rows[header:], start=header):
        try:
            t, v = _parse_row(row)
        except (ValueError, OverflowError) as exc:
            bad.append(f"line {i + 1}: {','.join(row)[:60]!r} ({exc})")
            continue
        ts.append(t)
        vs.append(v)
    if not ts:
        why = f"; e.g. {bad[0]}" if bad else ""
        raise CrucibleInputError(f"{p}: no valid timestamp,value rows ({len(bad)} bad){why}")
    return SeriesInput(prepare_arrays(ts, vs), "csv", str(p), len(rows) - header, len(bad),
                       bad[:MAX_BAD_EXAMPLES])  # fmt: skip


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_time(text: str) -> bool:
    try:
        parse_timestamp(text)
    except (ValueError, OverflowError):
        return False
    return True


def read_metric(store: Any, metric: str) -> SeriesInput:
    """A metric from the time-series store (``TimeSeriesStore``)."""
    series = store.read(metric)
    if len(series) == 0:
        raise CrucibleInputError(f"no data for metric {metric!r} in the store")
    return SeriesInput(series, "metric", metric, len(series))


# Analysis ---------------------------------------------------------------------------
def _verdict_json(v: Any, consensus: int) -> dict[str, Any]:
    return {
        "anomalous": v.anomalous,
        "skip": v.skip,
        "triggered": list(v.triggered),
        "consensus": consensus,
        "votes_for": len(v.triggered),
        "run": list(v.run),
        "timestamp": v.timestamp,
        "value": v.value,
    }


def _per_algorithm(series: Series, verdict: Any, algorithms: list[str], ctx: Context) -> dict:
    out: dict[str, dict[str, Any]] = {}
    for name in algorithms:
        if name in verdict.votes:
            out[name] = {"anomalous": verdict.votes[name], "score": _num(verdict.scores[name])}
        else:  # skipped series (TooShort, Boring): each algorithm alone, for information
            r = evaluate(name, series, ctx)
            out[name] = {"anomalous": r.anomalous, "score": _num(r.score)}
    return out


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def default_window(series: Series, full_duration: int, min_length: int) -> int:
    if len(series) < 2:
        return max(1, len(series))
    step = max(1.0, float(np.median(np.diff(series.timestamps))))
    return int(min(len(series), max(min_length, round(full_duration / step))))


def walk_forward(
    series: Series,
    *,
    options: EnsembleOptions,
    runner: CustomRunner | None,
    window: int,
    max_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """Judge every point (or every ``step``-th) as the newest; see the module doc."""
    t, v = series.timestamps, series.values
    n, first = len(series), max(1, options.min_length) - 1
    idx = np.arange(first, n)
    step = max(1, math.ceil(len(idx) / max_points)) if len(idx) else 1
    idx = idx[::step]
    flagged: list[dict[str, Any]] = []
    triggers: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    end = int(t[-1]) if n else 0
    for start in range(0, len(idx), CHUNK_ROWS):
        chunk = idx[start : start + CHUNK_ROWS]
        windows = _windows(t, v, chunk, window, end)
        found = run_many_with_custom(windows, now=end, runner=runner, use_names=False,
                                     options=options)  # fmt: skip
        for key, verdict in found.items():
            i = int(key)
            if verdict.skip:
                skips[verdict.skip] += 1
            triggers.update(verdict.triggered)
            if verdict.anomalous:
                flagged.append({"index": i, "timestamp": int(t[i]), "value": float(v[i]),
                                "triggered": list(verdict.triggered)})  # fmt: skip
    return {
        "window_points": window,
        "first_index": first,
        "step": step,
        "evaluated": len(idx),
        "anomalies": flagged,
        "triggers": dict(triggers),
        "skipped": dict(skips),
    }


def _windows(t: np.ndarray, v: np.ndarray, idx: np.ndarray, window: int, end: int) -> dict:
    """Series ending at each index of ``idx``, re-based to end at ``end``."""
    out: dict[str, Series] = {}
    full = idx[idx >= window - 1]
    if len(full):
        tw = sliding_window_view(t, window)[full - window + 1]
        vw = sliding_window_view(v, window)[full - window + 1]
        tw = tw - tw[:, -1:] + end
        for i, tr, vr in zip(full, tw, vw, strict=True):
            out[str(int(i))] = Series(tr, vr)
    for i in idx[idx < window - 1]:  # fewer earlier points than the window: all of them
        out[str(int(i))] = Series(t[: i + 1] - t[i] + end, v[: i + 1])
    return out


def analyse_series(
    data: SeriesInput,
    *,
    options: EnsembleOptions,
    runner: CustomRunner | None,
    metric: str | None = None,
    window: int | None = None,
    walk: bool = True,
    max_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """The crucible report of one series under the ensemble ``options`` (run without
    early exit, so every algorithm votes); ``metric`` None runs every custom algorithm
    (a file has no namespace)."""
    started = time.perf_counter()
    series = data.series
    now = float(series.timestamps[-1])
    opts = replace(options, early_exit=False)
    mode, consensus, algorithms = opts.mode, opts.consensus, list(opts.algorithms)
    key = metric if metric is not None else ""  # a metric's name is matched to namespaces
    found = run_many_with_custom({key: series}, now=now, runner=runner,
                                 use_names=metric is not None, options=opts)  # fmt: skip
    verdict = found[key]
    ctx = opts.context(now)
    customs = [c.name for c in runner.customs] if runner else []
    report: dict[str, Any] = {
        "skyline_version": __version__,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": data.describe(),
        "mode": mode,
        "consensus": consensus,
        "algorithms_configured": list(algorithms),
        "custom_algorithms": customs,
        "algorithms_run": list(verdict.run),
        "now": int(now),
        "algorithms": _per_algorithm(series, verdict, algorithms, ctx),
        "ensemble": _verdict_json(verdict, consensus),
    }
    for name in customs:
        if name in verdict.votes:
            report["algorithms"][name] = {"anomalous": verdict.votes[name],
                                          "score": _num(verdict.scores[name]), "custom": True}  # fmt: skip
        else:
            report["algorithms"][name] = {"anomalous": None, "score": None, "custom": True,
                                          "not_run": True}  # fmt: skip
    t_last = time.perf_counter()
    if walk:
        w = window or default_window(series, opts.full_duration, opts.min_length)
        report["walk"] = walk_forward(series, options=replace(opts, early_exit=not runner),
                                      runner=runner, window=w, max_points=max_points)  # fmt: skip
    t_walk = time.perf_counter()
    if runner:
        report["custom_counts"] = runner.take_counts()
    report["timings"] = {"last_point_s": round(t_last - started, 4),
                         "walk_s": round(t_walk - t_last, 4)}  # fmt: skip
    return report
