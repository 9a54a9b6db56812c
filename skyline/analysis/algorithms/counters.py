"""Counters for streaming detectors: a monotonic counter is judged on its increase.

``CounterAware(detector)`` is itself a vectorised streaming detector.  It watches
a metric's first ``decide_after`` points, giving them to the inner detector to
learn but reporting them neutral (the ensemble also needs ``min_tolerable_length``
points before it judges anything), and decides once, with the rule of
``skyline.analysis.algorithms.prepare.is_counter``: never negative, rising on at least half
of the steps, falling at most once per hundred.  A gauge goes on as it was (so a
gauge is judged exactly as by the inner detector alone, after the first
``decide_after`` points).  A counter's inner state starts again, and its points
are given as the non-negative increase; a step across a reset is not learned (it
would be a giant false drop) and scores neutral.  The decision is part of the
state, so it survives restarts.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.state import StateLayout
from skyline.analysis.algorithms.stepping import VectorDetector
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE

UNDECIDED, GAUGE, COUNTER = 0.0, 1.0, 2.0


class CounterAware:
    """Wraps a vectorised detector (see the module docstring)."""

    def __init__(self, inner: VectorDetector, decide_after: int = 100) -> None:
        self.inner = inner
        self.decide_after = int(decide_after)
        self.name = inner.name
        own = (("cw_n", 1), ("cw_prev", 1), ("cw_rises", 1), ("cw_falls", 1),
               ("cw_min", 1), ("cw_mode", 1))  # fmt: skip
        self._inner_width = inner.layout.width
        self.layout = StateLayout(
            inner.layout.name, inner.layout.version * 10 + 1, inner.layout.fields + own
        )

    def new_state(self, m: int) -> np.ndarray:
        state = np.zeros((m, self.layout.width))
        state[:, : self._inner_width] = self.inner.new_state(m)
        self.layout.view(state, "cw_prev")[:] = np.nan
        self.layout.view(state, "cw_min")[:] = np.inf
        return state

    def step(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        lay = self.layout
        t = np.asarray(t, dtype=float)
        v = np.asarray(v, dtype=float)
        inner = state[:, : self._inner_width]
        last = self.inner.layout.view(inner, "last_ts")
        ok = np.isfinite(t) & np.isfinite(v) & (t > last)
        mode, prev = lay.view(state, "cw_mode"), lay.view(state, "cw_prev")
        deciding = ok & (mode == UNDECIDED)
        self._observe(state, deciding, v)
        became_counter = deciding & (mode == COUNTER)
        if became_counter.any():  # it learned raw values so far: start again on increases
            inner[became_counter] = self.inner.new_state(int(became_counter.sum()))
        counter = ok & (mode == COUNTER)
        with np.errstate(over="ignore", invalid="ignore"):
            delta = v - prev
        feed = ok & ~(counter & ~(delta >= 0.0))  # a reset step is not learned
        feed_t = np.where(feed, t, np.nan)
        scores = self.inner.step(inner, feed_t, np.where(counter, delta, v))
        last[:] = np.where(ok, t, last)  # reset steps are seen too
        prev[:] = np.where(ok, v, prev)
        # points seen while deciding, and reset steps, are judged: neutral
        return np.where(feed & ~deciding, scores, np.where(ok, NEUTRAL_SCORE, np.nan))

    def _observe(self, state: np.ndarray, rows: np.ndarray, v: np.ndarray) -> None:
        """Count rises and falls of undecided rows; decide at ``decide_after``."""
        lay = self.layout
        n, prev = lay.view(state, "cw_n"), lay.view(state, "cw_prev")
        rises, falls = lay.view(state, "cw_rises"), lay.view(state, "cw_falls")
        low, mode = lay.view(state, "cw_min"), lay.view(state, "cw_mode")
        has_prev = rows & ~np.isnan(prev)
        rises[:] = np.where(has_prev & (v > prev), rises + 1, rises)
        falls[:] = np.where(has_prev & (v < prev), falls + 1, falls)
        low[:] = np.where(rows, np.minimum(low, v), low)
        n[:] = np.where(rows, n + 1, n)
        done = rows & (n >= self.decide_after)
        steps = n - 1
        is_counter = (low >= 0) & (rises >= steps // 2) & (falls <= np.maximum(1, steps // 100))
        mode[:] = np.where(done, np.where(is_counter, COUNTER, GAUGE), mode)
