"""The nine "three-sigma" algorithms of earthgecko Skyline, as pure functions.

Each algorithm is a *kernel* over a :class:`~skyline.analysis.algorithms.prepare.Block`
(rows of equal-length prepared series) returning ``(votes, scores)``: ``votes``
is int8 per row (``1`` anomalous, ``0`` not, ``-1`` None = cannot judge) and
``scores`` float64 per row.  The public per-series functions
(``histogram_bins(series, ctx) -> Result`` ...) run the same kernel on a block
of one row, so a series gets bit-identical results alone or inside a batch.

``Context.mode`` selects ``"classic"`` (reproduce the reference verdicts,
quirks included) or ``"default"`` (quirks fixed).  Every quirk and fix, and the
meaning of each score, is in ``docs/algorithms.md``.  No I/O, logging, settings
or clock in here: ``Context.now`` is only read by classic-mode ``ks_test``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

from skyline.analysis.algorithms.prepare import Block, _std, _tail, as_series, row_search
from skyline.store.timeseries import Series

__all__ = [
    "Context",
    "Result",
    "KERNELS",
    "histogram_bins",
    "first_hour_average",
    "stddev_from_average",
    "grubbs",
    "ks_test",
    "mean_subtraction_cumulation",
    "median_absolute_deviation",
    "stddev_from_moving_average",
    "least_squares",
]

MODES = ("classic", "default")
TRUE, FALSE, NONE = 1, 0, -1
Kernel = Callable[[Block, "Context"], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Context:
    """How to judge: ``mode``, the wall clock ``now`` (classic ks_test only) and the
    analysed window length ``full_duration`` in seconds (first_hour_average)."""

    mode: str = "default"
    now: float | None = None
    full_duration: int = 86400

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")

    @property
    def classic(self) -> bool:
        return self.mode == "classic"


@dataclass(frozen=True)
class Result:
    """One algorithm's verdict on one series: ``anomalous`` (None = cannot judge or
    error) and a continuous ``score`` (see docs/algorithms.md; 0.0 when not computable)."""

    anomalous: bool | None
    score: float


# Helpers ------------------------------------------------------------------------------
def _ratio(diff: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """diff / limit; inf when limit is 0 and diff > 0; 0 when not computable."""
    with np.errstate(all="ignore"):
        out = diff / limit
    out = np.where(limit == 0, np.where(diff > 0, np.inf, 0.0), out)
    return np.where(np.isnan(out), 0.0, out)


def _judge(exceeds: np.ndarray, valid: np.ndarray, ctx: Context) -> np.ndarray:
    """Votes from a comparison.  Classic keeps the reference's behaviour (a NaN
    statistic compares False); default mode says None when a statistic is not finite."""
    votes = np.where(exceeds, TRUE, FALSE).astype(np.int8)
    if not ctx.classic:
        votes[~valid] = NONE
    return votes


def _sigma_test(diff: np.ndarray, std: np.ndarray, ctx: Context, k: float = 3.0):
    """|diff| > k * std, with score |diff| / (k * std)."""
    diff = np.abs(diff)
    with np.errstate(all="ignore"):
        limit = k * std
        exceeds = diff > limit
    valid = np.isfinite(diff) & np.isfinite(limit)
    return _judge(exceeds, valid, ctx), _ratio(diff, limit)


# 1. histogram_bins --------------------------------------------------------------------
def _k_histogram_bins(b: Block, ctx: Context):
    v, t = b.v, b.tail
    first, last = v.min(axis=1), v.max(axis=1)
    const = first == last  # np.histogram widens a zero range by 0.5 each side
    first = np.where(const, first - 0.5, first)
    last = np.where(const, last + 0.5, last)
    step = (last - first) / 15
    edges = np.arange(16)[None, :] * step[:, None] + first[:, None]  # np.linspace's formula
    edges[:, 15] = last
    if ctx.classic:  # bin 0 only when t <= its lower edge; others lower <= t < upper
        k = (edges[:, 1:] <= t[:, None]).sum(axis=1)
        at_min = t <= edges[:, 0]
        matched = at_min | ((k >= 1) & (k <= 14))
        k = np.where(at_min, 0, np.clip(k, 0, 14))
    else:  # the bin np.histogram itself would put t in (last bin closed; clamped)
        k = (edges[:, 1:15] <= t[:, None]).sum(axis=1)
        matched = np.ones(len(k), bool)
    rows = np.arange(len(k))
    lower = edges[rows, k]
    upper = edges[rows, k + 1]
    upper = np.where(k == 14, np.nextafter(upper, np.inf), upper)  # last bin includes max
    count = ((v >= lower[:, None]) & (v < upper[:, None])).sum(axis=1)
    exceeds = matched & (count <= 20)
    valid = np.isfinite(edges).all(axis=1) & np.isfinite(t)
    scores = np.where(matched, 21.0 / (count + 1.0), 0.0)
    return _judge(exceeds, valid, ctx), scores


# 2. first_hour_average ----------------------------------------------------------------
def _k_first_hour_average(b: Block, ctx: Context):
    start = b.t[:, -1] - ctx.full_duration
    lo = row_search(b.t, start, "right")  # ts > start
    hi = row_search(b.t, start + 3600, "left")  # ts < start + 3600
    m = b.m
    mean, std = np.full(m, np.nan), np.full(m, np.nan)
    key = lo * (b.n + 1) + hi
    d = b.d
    for kv in np.unique(key):  # rows sharing a window slice are computed together
        rows = np.flatnonzero(key == kv)
        a, z = int(lo[rows[0]]), int(hi[rows[0]])
        if z <= a:
            continue
        x = d[rows, a:z] if len(rows) < m else d[:, a:z]
        mu = x.mean(axis=1)
        mean[rows], std[rows] = mu, _std(x, mu, 1)
    return _sigma_test(b.tail_d - mean, std, ctx)


# 3. stddev_from_average ---------------------------------------------------------------
def _k_stddev_from_average(b: Block, ctx: Context):
    return _sigma_test(b.tail_d - b.mean_d, b.std_d, ctx)


# 4. grubbs ----------------------------------------------------------------------------
@lru_cache(maxsize=256)
def grubbs_critical(n: int) -> float:
    """The Grubbs critical value G for n points (NaN when n <= 2)."""
    if n <= 2:
        return math.nan
    tq = float(stats.t.isf(0.05 / (2 * n), n - 2))
    t2 = tq * tq
    return ((n - 1) / math.sqrt(n)) * math.sqrt(t2 / (n - 2 + t2))


def _k_grubbs(b: Block, ctx: Context):
    std = b.std_d
    g = grubbs_critical(b.n)
    with np.errstate(all="ignore"):
        z = (b.tail_d - b.mean_d) / std
    if not ctx.classic:
        z = np.abs(z)  # fix: two-sided
    zero = std == 0
    with np.errstate(all="ignore"):
        exceeds = (z > g) & ~zero
        scores = np.where(zero | ~np.isfinite(z), 0.0, z / g)
    scores = np.where(np.isnan(scores), 0.0, scores)
    valid = zero | (np.isfinite(z) & math.isfinite(g))
    return _judge(exceeds, valid, ctx), scores


# 5. ks_test ---------------------------------------------------------------------------
def _k_ks_test(b: Block, ctx: Context):
    m = b.m
    if ctx.classic:
        if ctx.now is None:
            return np.full(m, NONE, np.int8), np.zeros(m)
        base = np.full(m, float(ctx.now))
    else:  # fix: windows end at the series' last timestamp, not the wall clock
        base = b.t[:, -1].astype(np.float64)
    ref_lo = row_search(b.t, base - 3600, "left")
    ref_hi = row_search(b.t, base - 600, "left")
    votes, scores = np.zeros(m, np.int8), np.zeros(m)
    candidates = np.flatnonzero((ref_hi - ref_lo >= 20) & (b.n - ref_hi >= 20))
    for i in candidates:
        reference = b.v[i, ref_lo[i] : ref_hi[i]]
        probe = b.v[i, ref_hi[i] :]
        if reference.min() == reference.max():
            continue
        votes[i], scores[i] = _ks_one(reference, probe)
    return votes, scores


def _ks_one(reference: np.ndarray, probe: np.ndarray) -> tuple[int, float]:
    from statsmodels.tsa.stattools import adfuller  # heavy import, only when needed

    try:
        res = stats.ks_2samp(reference, probe)
        d, p = float(res.statistic), float(res.pvalue)
        if p < 0.05 and d > 0.5:
            with warnings.catch_warnings():  # statsmodels' notice about its return type
                warnings.simplefilter("ignore", FutureWarning)
                adf_p = adfuller(reference, 10)[1]
            if adf_p < 0.05:
                return TRUE, d / 0.5
        return FALSE, d / 0.5
    except Exception:  # noqa: BLE001 - the reference records any error as a None vote
        return NONE, 0.0


# 6. mean_subtraction_cumulation -------------------------------------------------------
def _k_mean_subtraction_cumulation(b: Block, ctx: Context):
    m = b.m
    if b.n < 2:
        return _sigma_test(np.full(m, np.nan), np.full(m, np.nan), ctx)
    x = b.d[:, :-1]
    mu = x.mean(axis=1)
    std = _std(x, mu, 0 if ctx.classic else 1)  # classic: the numba path's ddof 0
    return _sigma_test(b.d[:, -1] - mu, std, ctx)


# 7. median_absolute_deviation ---------------------------------------------------------
def _k_median_absolute_deviation(b: Block, ctx: Context):
    med = np.median(b.v, axis=1)
    dev = np.abs(b.v - med[:, None])
    mad = np.median(dev, axis=1)
    last = dev[:, -1]
    zero = mad == 0
    with np.errstate(all="ignore"):
        stat = last / mad
    exceeds = ~zero & (stat > 6)
    scores = np.where(zero | ~np.isfinite(stat), 0.0, stat / 6)
    valid = np.isfinite(mad) & np.isfinite(last)
    return _judge(exceeds, valid, ctx), scores


# 8. stddev_from_moving_average --------------------------------------------------------
@lru_cache(maxsize=64)
def ewm_weights(n: int, com: float = 50.0) -> tuple[np.ndarray, float, float]:
    """pandas ``ewm(com, adjust=True)`` weights of n points (newest last), their sum
    and the sum of their squares."""
    w = (1.0 - 1.0 / (1.0 + com)) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    w.flags.writeable = False
    return w, float(w.sum()), float((w * w).sum())


def _k_stddev_from_moving_average(b: Block, ctx: Context):
    w, sw, sw2 = ewm_weights(b.n)
    d = b.d
    mu = (d * w).sum(axis=1) / sw
    dev = d - mu[:, None]
    dev *= dev
    dev *= w
    num, den = sw * sw, sw * sw - sw2
    var = dev.sum(axis=1) / sw * (num / den) if den > 0 else np.full(b.m, np.nan)
    std = np.sqrt(np.maximum(var, 0.0))
    return _sigma_test(d[:, -1] - mu, std, ctx)


# 9. least_squares ---------------------------------------------------------------------
def _k_least_squares(b: Block, ctx: Context):
    m = b.m
    if b.n < 3:
        return np.full(m, FALSE, np.int8), np.zeros(m)
    tf = b.t.astype(np.float64)
    xc = tf - tf.mean(axis=1)[:, None]
    yc = b.d - b.mean_d[:, None]
    with np.errstate(all="ignore"):
        slope = (xc * yc).sum(axis=1) / (xc * xc).sum(axis=1)
    err = yc - slope[:, None] * xc
    std = _std(err, err.mean(axis=1), 0)  # scipy.std: population
    tail = _tail(err)
    votes, scores = _sigma_test(tail, std, ctx)
    # round(std) != 0 and round(t) != 0, i.e. both above 0.5 in magnitude
    votes[(votes == TRUE) & ~((std > 0.5) & (np.abs(tail) > 0.5))] = FALSE
    return votes, scores


KERNELS: dict[str, Kernel] = {
    "histogram_bins": _k_histogram_bins,
    "first_hour_average": _k_first_hour_average,
    "stddev_from_average": _k_stddev_from_average,
    "grubbs": _k_grubbs,
    "ks_test": _k_ks_test,
    "mean_subtraction_cumulation": _k_mean_subtraction_cumulation,
    "median_absolute_deviation": _k_median_absolute_deviation,
    "stddev_from_moving_average": _k_stddev_from_moving_average,
    "least_squares": _k_least_squares,
}

_VOTE = {TRUE: True, FALSE: False, NONE: None}
DEFAULT_CONTEXT = Context()


def run_kernel(name: str, block: Block, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        return KERNELS[name](block, ctx)


def evaluate(name: str, series: Any, ctx: Context = DEFAULT_CONTEXT) -> Result:
    """Run one algorithm on one series; any error gives ``Result(None, 0.0)``."""
    try:
        s = as_series(series)
        if len(s) == 0:
            return Result(None, 0.0)
        votes, scores = run_kernel(name, Block.of(s), ctx)
        return Result(_VOTE[int(votes[0])], float(scores[0]))
    except Exception:  # noqa: BLE001 - an algorithm error is a None vote, as in the reference
        return Result(None, 0.0)


def histogram_bins(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("histogram_bins", series, ctx)


def first_hour_average(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("first_hour_average", series, ctx)


def stddev_from_average(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("stddev_from_average", series, ctx)


def grubbs(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("grubbs", series, ctx)


def ks_test(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("ks_test", series, ctx)


def mean_subtraction_cumulation(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("mean_subtraction_cumulation", series, ctx)


def median_absolute_deviation(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("median_absolute_deviation", series, ctx)


def stddev_from_moving_average(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("stddev_from_moving_average", series, ctx)


def least_squares(series: Series, ctx: Context = DEFAULT_CONTEXT) -> Result:
    return evaluate("least_squares", series, ctx)
