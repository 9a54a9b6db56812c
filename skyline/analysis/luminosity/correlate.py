"""Luminosity's correlation: which metrics moved with an anomaly's metric.

Pure functions (no Redis, SQL, settings or logging).  For an anomaly at time ``T`` on
metric ``M``:

1. **Anchor window**: the last ``window`` points of ``M`` at or before ``T`` (its own
   timestamps ``t_0 .. t_{n-1}``).  Fewer than ``min_points`` points, or a flat window
   (max - min <= 1e-12 x max |value|), and the anomaly is not correlated.
2. **Resampling**: every other metric is sampled at ``M``'s timestamps by
   sample-and-hold (its latest value at or before each ``t_k``, looking back at most
   one window span before ``t_0``), all metrics at once: one ``searchsorted`` over the
   concatenated pieces.  So metrics of another resolution or with other timestamps
   are compared on ``M``'s grid.  A metric with no value at ``t_0`` (it started
   later, or has no data there) is *incomplete*; a flat resampled window is *flat*:
   both are skipped, never divided by.
3. **Cross-correlation** (luminol's ``CrossCorrelator``): z-normalise each window with
   its own mean and population standard deviation; at a shift of ``d`` steps

       r(d) = (1 / n) * sum_i  z_M[i] * z_X[i + d]      (over the i where i + d is in range)

   for ``d = -max_shift .. +max_shift``: one matrix product per shift over all metrics
   (2-D numpy).  Dividing by ``n`` (not by the overlap) is luminol's: it shrinks the
   coefficient of large shifts.  ``d > 0`` means ``X`` moved ``d`` steps *after* ``M``.
4. **Best shift**: the ``d`` of the largest ``r`` (the largest ``|r|`` when
   ``negative``); ``shift_seconds = t_|d| - t_0`` with the sign of ``d`` (luminol's).
   ``shifted_coefficient = r * (1 - |shift_seconds| / max_shift_seconds * shift_impact)``:
   a symmetric penalty of shifted matches (luminol's rewards positive shifts; see
   docs/luminosity.md).
5. **Kept**: ``coefficient >= threshold`` (and ``<= -threshold`` when ``negative``),
   strongest ``|coefficient|`` first, at most ``max_correlations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skyline.store.timeseries import sort_dedupe

FLAT_RTOL = 1e-12


@dataclass(frozen=True)
class Params:
    """How one anomaly is correlated (see the module docstring)."""

    window: int = 30
    min_points: int = 10
    max_shift: int = 3
    shift_impact: float = 0.05
    threshold: float = 0.9
    negative: bool = False
    max_correlations: int = 50


@dataclass(frozen=True)
class Correlated:
    metric: str
    coefficient: float
    shift: int  # steps; > 0: the metric moved after the anomaly's metric
    shift_seconds: int
    shifted_coefficient: float


@dataclass
class Outcome:
    """What correlating one anomaly found, and how many metrics were compared or skipped."""

    correlations: list[Correlated]
    compared: int = 0
    flat: int = 0
    incomplete: int = 0


def clean(
    t: np.ndarray | Sequence[float], v: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, de-duplicated (last value wins) int64 timestamps and finite float64 values."""
    s = sort_dedupe(np.asarray(t, dtype=np.float64).astype(np.int64), np.asarray(v, np.float64))
    return s.timestamps, s.values


def anchor_window(
    t: np.ndarray, v: np.ndarray, at: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """The last ``window`` points at or before ``at`` of a clean series."""
    end = int(np.searchsorted(t, at, side="right"))
    start = max(0, end - window)
    return t[start:end], v[start:end]


def is_flat(values: np.ndarray) -> np.ndarray | bool:
    """Per row (or for a 1-D array): max - min is negligible against the magnitude."""
    spread = np.ptp(values, axis=-1)
    scale = np.max(np.abs(values), axis=-1)
    return spread <= FLAT_RTOL * scale


def lookback_start(grid: np.ndarray) -> int:
    """The earliest time ``resample`` uses a point from: one grid span before ``grid[0]``."""
    return int(grid[0]) - max(int(grid[-1] - grid[0]), 1)


def resample(grid: np.ndarray, series: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Every clean series sampled on ``grid`` by sample-and-hold: a (len(series),
    len(grid)) matrix, NaN where a series has no value at or before a grid time within
    one grid span before ``grid[0]``."""
    out = np.full((len(series), len(grid)), np.nan)
    if not len(series) or not len(grid):
        return out
    base = lookback_start(grid)
    last = int(grid[-1])
    pieces_t, pieces_v, counts = [], [], np.zeros(len(series), np.int64)
    for k, (t, v) in enumerate(series):
        lo = int(np.searchsorted(t, base, side="left"))
        hi = int(np.searchsorted(t, last, side="right"))
        if hi > lo:
            pieces_t.append(t[lo:hi])
            pieces_v.append(v[lo:hi])
            counts[k] = hi - lo
    if not pieces_t:
        return out
    stride = last - base + 1
    seg = np.repeat(np.arange(len(series), dtype=np.int64), counts)
    keys = seg * stride + (np.concatenate(pieces_t).astype(np.int64) - base)
    values = np.concatenate(pieces_v).astype(np.float64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    query = np.arange(len(series), dtype=np.int64)[:, None] * stride + (
        grid.astype(np.int64) - base
    )
    pos = np.searchsorted(keys, query.ravel(), side="right").reshape(query.shape) - 1
    valid = pos >= starts[:, None]
    out[valid] = values[pos[valid]]
    return out


def zscore(values: np.ndarray) -> np.ndarray:
    """(x - mean) / population std along the last axis; callers drop flat rows first."""
    mean = values.mean(axis=-1, keepdims=True)
    std = values.std(axis=-1, keepdims=True)
    return (values - mean) / std


def cross_correlation(anchor: np.ndarray, others: np.ndarray, max_shift: int) -> np.ndarray:
    """luminol's coefficient at every shift: an (m, 2 * max_shift + 1) matrix whose column
    ``max_shift + d`` is r(d) of each row of ``others`` (m, n) against ``anchor`` (n,).
    Neither may be flat.  ``max_shift`` is capped at n - 1."""
    n = len(anchor)
    k = max(0, min(max_shift, n - 1))
    za = zscore(np.asarray(anchor, np.float64))
    zb = zscore(np.asarray(others, np.float64).reshape(-1, n))
    r = np.zeros((zb.shape[0], 2 * max_shift + 1))
    for d in range(-k, k + 1):
        i0, i1 = max(0, -d), n - max(0, d)
        r[:, max_shift + d] = zb[:, i0 + d : i1 + d] @ za[i0:i1] / n
    return r


def best_shifts(r: np.ndarray, negative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the shift in steps (column - max_shift) and coefficient of the best column."""
    max_shift = (r.shape[1] - 1) // 2
    col = np.argmax(np.abs(r) if negative else r, axis=1)
    return col - max_shift, r[np.arange(r.shape[0]), col]


def window_of(
    anchor: tuple[np.ndarray, np.ndarray], at: int, params: Params
) -> tuple[np.ndarray, np.ndarray] | None:
    """The anchor window of a clean series, or None when too short or flat."""
    t_a, v_a = anchor_window(anchor[0], anchor[1], at, params.window)
    if len(t_a) < max(params.min_points, 3) or is_flat(v_a):
        return None
    return t_a, v_a


def correlate_window(
    window: tuple[np.ndarray, np.ndarray],
    others: Sequence[tuple[str, np.ndarray, np.ndarray]],
    params: Params,
) -> Outcome:
    """Correlate an anchor window (from ``window_of``) with ``others`` (name, clean
    timestamps, clean values): every kept correlation, strongest first, not yet capped."""
    t_a, v_a = window
    matrix = resample(t_a, [(t, v) for _, t, v in others])
    complete = ~np.isnan(matrix).any(axis=1)
    flat = np.zeros(len(others), bool)
    flat[complete] = is_flat(matrix[complete])
    use = complete & ~flat
    outcome = Outcome([], compared=int(use.sum()), flat=int(flat.sum()),
                      incomplete=int((~complete).sum()))  # fmt: skip
    if not use.any():
        return outcome
    r = cross_correlation(v_a, matrix[use], params.max_shift)
    shifts, coefs = best_shifts(r, params.negative)
    keep = coefs >= params.threshold
    if params.negative:
        keep |= coefs <= -params.threshold
    names = [name for (name, _, _), u in zip(others, use, strict=True) if u]
    outcome.correlations = sorted(
        (_correlated(names[i], float(coefs[i]), int(shifts[i]), t_a, params)
         for i in np.flatnonzero(keep)),
        key=_strength,
    )  # fmt: skip
    return outcome


def merge(outcomes: Sequence[Outcome], params: Params) -> Outcome:
    """Outcomes of several chunks of metrics as one, capped at ``max_correlations``."""
    found = sorted((c for o in outcomes for c in o.correlations), key=_strength)
    return Outcome(
        found[: params.max_correlations],
        compared=sum(o.compared for o in outcomes),
        flat=sum(o.flat for o in outcomes),
        incomplete=sum(o.incomplete for o in outcomes),
    )


def correlate(
    anchor: tuple[np.ndarray, np.ndarray],
    at: int,
    others: Sequence[tuple[str, np.ndarray, np.ndarray]],
    params: Params,
) -> Outcome | None:
    """Correlate the anomaly at ``at`` of the clean series ``anchor`` with ``others``;
    None when the anchor window is too short or flat."""
    window = window_of(anchor, at, params)
    if window is None:
        return None
    return merge([correlate_window(window, others, params)], params)


def _strength(c: Correlated) -> tuple[float, str]:
    return (-abs(c.coefficient), c.metric)


def _correlated(name: str, coef: float, shift: int, t_a: np.ndarray, params: Params) -> Correlated:
    k = min(params.max_shift, len(t_a) - 1)
    seconds = int(t_a[abs(shift)] - t_a[0]) * (1 if shift >= 0 else -1)
    max_seconds = int(t_a[k] - t_a[0])
    penalty = abs(seconds) / max_seconds * params.shift_impact if max_seconds else 0.0
    return Correlated(name, coef, shift, seconds, coef * (1 - penalty))
