"""Boundary's algorithms: pure functions judging the newest datapoint of a series.

Each takes the metric's recent data as two aligned arrays in timestamp order
(``t`` int seconds, ``v`` finite floats), the last element being the datapoint
judged, and returns a ``Judgement``: breached or not, or *skipped* with the name of
the guard that declined to judge (a skipped point is not a breach).  No Redis,
settings or logging here, so the daemon, tests and tools share them.

Meanings (earthgecko Skyline's BOUNDARY_ALGORITHMS, reference notes §7):

- ``greater_than``: the value is above the limit (strictly).
- ``less_than``: the value is below the limit (strictly).
- ``detect_drop_off_cliff``: the value fell off a cliff relative to the last ten
  resolution steps; see ``detect_drop_off_cliff`` for every guard.

``min_average`` (a rule option, applied before any algorithm): the metric is not
judged while the mean of its values in the last ``min_average_seconds`` (ending at
the judged point) is below ``min_average``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLIFF_MIN_POINTS = 30  # the reference's "too short" bound
CLIFF_STEPS = 10  # the window: the last 10 resolution steps
CLIFF_MIN_WINDOW_POINTS = 4  # fewer points in that window: too sparse to judge
SIMILAR_LOW_FRACTION = 0.05  # "similar low": within 5 % of the window's range of its minimum
LAST_VALUE_FLOOR = 0.1  # a last value of 0 divides as 0.1


@dataclass(frozen=True)
class Judgement:
    """The verdict on one datapoint: ``score`` compared with ``limit`` (e.g. the value
    and the threshold, or the cliff's ratio and trigger factor)."""

    breach: bool
    score: float = math.nan
    limit: float = math.nan
    skip: str = ""  # the guard that declined to judge: too_short, sparse, negative, ...


def skipped(reason: str) -> Judgement:
    return Judgement(False, skip=reason)


def greater_than(t: np.ndarray, v: np.ndarray, limit: float) -> Judgement:
    value = float(v[-1])
    return Judgement(value > limit, value, limit)


def less_than(t: np.ndarray, v: np.ndarray, limit: float) -> Judgement:
    value = float(v[-1])
    return Judgement(value < limit, value, limit)


def below_min_average(t: np.ndarray, v: np.ndarray, min_average: float, seconds: int) -> bool:
    """True when the mean over the last ``seconds`` (ending at ``t[-1]``, start excluded)
    is below ``min_average``; never when ``min_average`` is 0 or less."""
    if min_average <= 0 or seconds <= 0:
        return False
    start = int(np.searchsorted(t, t[-1] - seconds, side="right"))
    return float(np.mean(v[start:])) < min_average


def resolution(t: np.ndarray) -> float:
    """The series' step: the median gap between its last ``CLIFF_MIN_POINTS`` timestamps
    (the reference takes the last gap alone, which one late or early point distorts)."""
    tail = t[-CLIFF_MIN_POINTS:]
    return float(np.median(np.diff(tail))) if len(tail) > 1 else 0.0


def trigger_factor(window_max: float, window_mean: float) -> float:
    """By the window's range, as the reference: max > 100 -> 100; max < 20 -> mean / 2;
    otherwise (20 <= max <= 100) -> 15."""
    if window_max > 100:
        return 100.0
    if window_max < 20:
        return window_mean / 2
    return 15.0


def detect_drop_off_cliff(t: np.ndarray, v: np.ndarray, trigger: float = 0.0) -> Judgement:
    """A sudden drop of the newest value against the last ten resolution steps.

    Guards, in order (each a skip, never a breach):
    ``too_short`` fewer than 30 points; ``no_resolution`` timestamps not increasing;
    ``sparse`` fewer than 4 points in the window (points with ``t > t[-1] - 10 * res``);
    ``negative`` any value in the window below 0; ``zero`` the window's max is 0;
    ``flat`` min == max; ``similar_lows`` two or more points of the window lie within 5 %
    of its range of its minimum — the low is not new (the reference meant this guard but
    computed ``len(np.where(...))``, always 1, so it never fired).

    Then the ratio ``mean(window) / last`` (a last value below 0.1, e.g. 0, divides as
    0.1, so a drop to zero is ten times the mean rather than a division by zero; a last
    value of 1 divides by 1) is compared with the trigger factor (``trigger`` if > 0,
    else ``trigger_factor``): a breach when ``int(ratio) > factor``.
    """
    if len(v) < CLIFF_MIN_POINTS:
        return skipped("too_short")
    res = resolution(t)
    if res <= 0:
        return skipped("no_resolution")
    start = int(np.searchsorted(t, t[-1] - CLIFF_STEPS * res, side="right"))
    window = v[start:]
    if len(window) < CLIFF_MIN_WINDOW_POINTS:
        return skipped("sparse")
    low, high = float(window.min()), float(window.max())
    if low < 0:
        return skipped("negative")
    if high == 0:
        return skipped("zero")
    if low == high:
        return skipped("flat")
    if int(np.count_nonzero(window <= low + SIMILAR_LOW_FRACTION * (high - low))) >= 2:
        return skipped("similar_lows")
    mean = float(window.mean())
    factor = trigger if trigger > 0 else trigger_factor(high, mean)
    ratio = mean / max(float(window[-1]), LAST_VALUE_FLOOR)
    return Judgement(int(ratio) > factor, ratio, factor)


def judge(
    algorithm: str,
    t: np.ndarray,
    v: np.ndarray,
    limit: float,
    min_average: float = 0.0,
    min_average_seconds: int = 0,
) -> Judgement:
    """Apply one rule's algorithm (and its min_average guard) to the newest point."""
    if below_min_average(t, v, min_average, min_average_seconds):
        return skipped("min_average")
    if algorithm == "greater_than":
        return greater_than(t, v, limit)
    if algorithm == "less_than":
        return less_than(t, v, limit)
    if algorithm == "detect_drop_off_cliff":
        return detect_drop_off_cliff(t, v, limit)
    raise ValueError(f"unknown boundary algorithm {algorithm!r}")
