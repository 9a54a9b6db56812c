"""The compiled ensemble loop: the algorithms with a row kernel (``_rows``), in the
ensemble's order, over many rows of a 2-D array read in place, with the ensemble's
early exit.

It serves two callers, so that every path gives bit-identical votes and scores:

* each of those algorithms' registered kernel (``run_rows``: one algorithm, no early
  exit), for whoever calls an algorithm by itself;
* the ensemble (``ensemble_rows``: the leading algorithms of the ensemble that have a
  row kernel), which ``run_ensemble``, ``run_ensemble_batch`` and the analyzer's
  classic pass run, the last two on the decoded rows in place, so that no row is
  copied into a block for them.

A row reads its shared statistics once (``moments``).  ``ks_test`` pauses a row whose
windows need scipy's test: the loop records the windows and moves on, Python runs the
test, and the loop resumes the row after it.  The leading ``_`` keeps this module out
of the registry (it defines no algorithm).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from skyline.analysis.algorithms.classic._base import (
    ALGORITHMS,
    NONE,
    TRUE,
    Context,
    Kernel,
)
from skyline.analysis.algorithms.classic._rows import (
    against,
    first_hour_average,
    grubbs,
    histogram_bins,
    ks_window,
    least_squares,
    mean_subtraction_cumulation,
    median_absolute_deviation,
    moments,
    sigma,
    stddev_from_moving_average,
)
from skyline.compiled import jit

__all__ = ["CODES", "ensemble_rows", "leading_codes", "row_kernel", "run_rows"]

# the algorithms with a row kernel, by code (the loop's dispatch below)
CODES = {
    "histogram_bins": 0,
    "first_hour_average": 1,
    "stddev_from_average": 2,
    "grubbs": 3,
    "ks_test": 4,
    "mean_subtraction_cumulation": 5,
    "median_absolute_deviation": 6,
    "stddev_from_moving_average": 7,
    "least_squares": 8,
}
NOT_RUN = -2
RUNNING, DECIDED, PAUSED = 0, 1, 2  # a row's state after the loop


@jit
def _loop(t2d: np.ndarray, v2d: np.ndarray, rows: np.ndarray, todo: np.ndarray,
          codes: np.ndarray, start: np.ndarray, n_against: np.ndarray, state: np.ndarray,
          window: np.ndarray, votes: np.ndarray, scores: np.ndarray, g: float,
          full_duration: int, now: float, w: np.ndarray, sw: float, sw2: float,
          classic: bool, stop_at: int) -> None:  # fmt: skip
    """For each ``r`` in ``todo`` (row ``rows[r]``): the algorithms ``codes[start[r]:]``
    in order, into ``votes[r, j]`` / ``scores[r, j]``, counting ``n_against[r]``.  A row that reaches ``stop_at`` is DECIDED; one that
    ks_test must hand to scipy is PAUSED at ``start[r]``, its windows in ``window[r]``."""
    scratch = np.empty(v2d.shape[1])
    for k in range(len(todo)):
        r = todo[k]
        t, v = t2d[rows[r]], v2d[rows[r]]
        lo, hi, mean, std, tail_d = moments(v)
        for j in range(start[r], len(codes)):
            c = codes[j]
            if c == 0:
                vote, score = histogram_bins(v, lo, hi, classic)
            elif c == 1:
                vote, score = first_hour_average(t, v, tail_d, full_duration, classic)
            elif c == 2:
                vote, score = sigma(tail_d - mean, std, classic)
            elif c == 3:
                vote, score = grubbs(mean, std, tail_d, g, classic)
            elif c == 4:
                vote, a, b = ks_window(t, v, now, classic)
                if vote == TRUE:  # scipy decides: Python runs it, then resumes the row
                    state[r], start[r], window[r, 0], window[r, 1] = PAUSED, j, a, b
                    break
                score = 0.0
            elif c == 5:
                vote, score = mean_subtraction_cumulation(v, classic)
            elif c == 6:
                vote, score = median_absolute_deviation(v, lo != lo, scratch, classic)
            elif c == 7:
                vote, score = stddev_from_moving_average(v, w, sw, sw2, classic)
            else:
                vote, score = least_squares(t, v, mean, classic)
            votes[r, j], scores[r, j] = vote, score
            n_against[r] += against(vote, classic)
            if n_against[r] >= stop_at:
                state[r] = DECIDED
                break


_ROW_KERNELS: dict[str, Kernel] = {}  # name -> the registered kernel that is ``run_rows``


def row_kernel(kernel: Kernel) -> Kernel:
    """Mark an algorithm's kernel (named as the algorithm, in ``CODES``) as the one the
    fused loop computes: the ensemble then runs it inside the loop.  A kernel put in
    its place later (a test's ``monkeypatch``) is not marked, and runs as itself."""
    if kernel.__name__ not in CODES:
        raise ValueError(f"{kernel.__name__} has no row kernel in _rows")
    _ROW_KERNELS[kernel.__name__] = kernel
    return kernel


def leading_codes(algorithms: Sequence[str]) -> np.ndarray:
    """The codes of the ensemble's leading algorithms whose registered kernel is the
    fused loop's (none twice)."""
    out: list[int] = []
    for name in algorithms:
        kernel = _ROW_KERNELS.get(name)
        if kernel is None or ALGORITHMS.get(name).kernel is not kernel or CODES[name] in out:
            break
        out.append(CODES[name])
    return np.array(out, np.int64)


def ensemble_rows(t2d: np.ndarray, v2d: np.ndarray, rows: np.ndarray, codes: np.ndarray,
                  stop_at: int, ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The algorithms ``codes`` on rows ``rows`` of ``t2d``/``v2d`` (read in place), in
    order, each row stopping once ``stop_at`` voted against it: (votes, scores,
    decided), votes -2 and scores NaN where an algorithm did not run."""
    if t2d.shape != v2d.shape:
        raise ValueError(f"timestamps {t2d.shape} and values {v2d.shape} differ in shape")
    m, n = len(rows), v2d.shape[1]
    votes = np.full((m, len(codes)), NOT_RUN, np.int8)
    scores = np.full((m, len(codes)), np.nan)
    state = np.zeros(m, np.int8)
    if not m or not n or not len(codes):
        return votes, scores, state == DECIDED
    rows = np.ascontiguousarray(rows, np.int64)
    start, n_against = np.zeros(m, np.int64), np.zeros(m, np.int64)
    window = np.zeros((m, 2), np.int64)
    g, w, sw, sw2 = _params(n)
    now = math.nan if ctx.now is None else float(ctx.now)
    todo = np.arange(m)
    while len(todo):
        _loop(t2d, v2d, rows, todo, codes, start, n_against, state, window, votes, scores,
              g, ctx.full_duration, now, w, sw, sw2, ctx.classic, stop_at)  # fmt: skip
        todo = np.flatnonzero(state == PAUSED)
        for r in todo.tolist():
            j, (a, b) = int(start[r]), window[r].tolist()
            v = v2d[rows[r]]
            vote, score = _ks_test(v[a:b], v[b:])
            votes[r, j], scores[r, j] = vote, score
            n_against[r] += against(vote, ctx.classic)
            state[r] = DECIDED if n_against[r] >= stop_at else RUNNING
            start[r] = j + 1
        todo = todo[state[todo] == RUNNING]
    return votes, scores, state == DECIDED


def run_rows(name: str, t2d: np.ndarray, v2d: np.ndarray,
             ctx: Context) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One algorithm's (votes, scores) on every row: its registered kernel."""
    m, n = v2d.shape
    if not m or not n:
        return np.full(m, NONE, np.int8), np.zeros(m)
    never = 2  # one vote never reaches two against: no row stops early
    votes, scores, _ = ensemble_rows(t2d, v2d, np.arange(m), np.array([CODES[name]]), never, ctx)
    return votes[:, 0], scores[:, 0]


def _params(n: int) -> tuple[float, np.ndarray, float, float]:
    """What the kernels need for rows of ``n`` points: the Grubbs critical value and
    the EWMA weights with their sum and sum of squares (each cached per ``n``)."""
    from skyline.analysis.algorithms.classic.grubbs import grubbs_critical
    from skyline.analysis.algorithms.classic.stddev_from_moving_average import ewm_weights

    return grubbs_critical(n), *ewm_weights(n)


def _ks_test(reference: np.ndarray, probe: np.ndarray) -> tuple[int, float]:
    from skyline.analysis.algorithms.classic.ks_test import ks_two_windows

    return ks_two_windows(reference, probe)
