"""The consensus ensemble (``run_ensemble``) as a streaming detector.

Skyline's analyzer judges the *last* point of a metric's recent window with the
nine three-sigma algorithms and a consensus vote.  ``EnsembleStreamDetector``
does the same for every point of a stream: to score a point it appends the point
to the last ``window - 1`` learned points and runs
:func:`~skyline.analysis.algorithms.ensemble.run_ensemble` on that window with ``now`` =
the point's timestamp (so the "stale" check never fires and classic ``ks_test``
ends its windows at the point).

**Window.** A fixed number of points (default 1,440), not a fixed duration: the
reference analyses 24 hours (``FULL_DURATION``), which is 288 points of 5-minute
data but only 24 points of hourly data (always ``TooShort``).  1,440 points is
24 h of 1-minute data, 5 days of 5-minute data.  ``full_duration`` (used by
``first_hour_average``, "the first hour of the analysed window") is set to the
window's own time span, so that algorithm still compares the last points with
the window's first hour as in the reference.

**Score.** ``votes in favour / number of algorithms``, in [0, 1]: True votes,
plus None votes in classic mode (the reference counts an error towards
"anomalous"; all-None is not anomalous and scores 0).  All algorithms run (no
early exit) so the count is complete; the consensus decision is exactly
``score >= consensus / len(algorithms)``, which is what :meth:`verdict` returns
(with early exit, as ``run_ensemble`` decides by default).  Neutral
(``NEUTRAL_SCORE``) while fewer than ``min_length`` points are in the window,
when the ensemble skips the window (``Boring``, ``TooShort`` ...), and for a
non-finite point.

Learning keeps the raw points in a ring buffer (non-finite values are dropped,
as the store's ``prepare`` would); duplicate or unsorted timestamps are left to
``run_ensemble``'s own preparation (sort, last write wins).  Per point the cost
is one ensemble run over ``window`` points (about a millisecond at 1,440).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from skyline.analysis.algorithms.ensemble import CLASSIC_ORDER, Verdict, run_ensemble
from skyline.analysis.algorithms.options import EnsembleOptions
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE

__all__ = ["EnsembleStreamDetector", "votes_in_favour"]

DEFAULT_WINDOW = 1440


def votes_in_favour(verdict: Verdict, mode: str) -> int:
    """Votes counting towards "anomalous" under ``mode``'s consensus rule."""
    votes = list(verdict.votes.values())
    n_true = sum(1 for v in votes if v is True)
    if mode != "classic":
        return n_true
    n_none = sum(1 for v in votes if v is None)
    if n_true == 0 and all(v is None for v in votes):
        return 0  # classic: all None is not anomalous
    return n_true + n_none


class EnsembleStreamDetector:
    """The consensus ensemble over a sliding window of points (module docstring)."""

    def __init__(
        self,
        mode: str = "classic",
        *,
        window: int = DEFAULT_WINDOW,
        consensus: int = 6,
        algorithms: Sequence[str] = CLASSIC_ORDER,
        min_length: int = 100,
        max_boredom: int = 100,
        boredom_set_size: int = 1,
    ) -> None:
        if window < 2:
            raise ValueError("window must be >= 2")
        self.mode = mode
        self.window = int(window)
        self.algorithms = tuple(algorithms)
        self.options = EnsembleOptions(
            mode=mode,
            algorithms=self.algorithms,
            consensus=consensus,
            min_length=min_length,
            max_boredom=max_boredom,
            boredom_set_size=boredom_set_size,
        )
        self.min_length = min_length
        cap = 2 * self.window
        self._t = np.zeros(cap + 1, np.int64)
        self._v = np.zeros(cap + 1, np.float64)
        self._start = 0  # live points are [_start, _end)
        self._end = 0

    # -- window ------------------------------------------------------------------
    def _learned(self) -> int:
        return self._end - self._start

    def _window_with(self, timestamp: float, value: float) -> tuple[np.ndarray, np.ndarray]:
        """The last ``window - 1`` learned points plus this one (views, then a copy)."""
        keep = self.window - 1
        lo = max(self._start, self._end - keep)
        # write the candidate point just past the live region without learning it
        self._t[self._end] = int(timestamp)
        self._v[self._end] = value
        return self._t[lo : self._end + 1], self._v[lo : self._end + 1]

    def _full_duration(self, t: np.ndarray) -> int:
        span = int(t.max() - t.min()) if len(t) else 0
        return max(span + 1, 3600)

    def verdict(self, timestamp: float, value: float, *, early_exit: bool = True) -> Verdict:
        """``run_ensemble`` on the window ending with this point (nothing is learned)."""
        t, v = self._window_with(timestamp, value)
        return run_ensemble(
            (t.copy(), v.copy()),
            now=float(timestamp),
            options=self.options,
            early_exit=early_exit,
            full_duration=self._full_duration(t),
        )

    # -- Detector interface ------------------------------------------------------
    def score_one(self, timestamp: float, value: float) -> float:
        if not (math.isfinite(timestamp) and math.isfinite(value)):
            return NEUTRAL_SCORE
        if abs(timestamp) >= 9.2e18 or self._learned() + 1 < self.min_length:
            return NEUTRAL_SCORE
        verdict = self.verdict(timestamp, value, early_exit=False)
        if verdict.anomalous is None:
            return NEUTRAL_SCORE
        score = votes_in_favour(verdict, self.mode) / len(self.algorithms)
        return float(min(1.0, max(0.0, score)))

    def learn_one(self, timestamp: float, value: float) -> None:
        if not (math.isfinite(timestamp) and math.isfinite(value)) or abs(timestamp) >= 9.2e18:
            return
        if self._end + 1 >= len(self._t):  # compact: keep the last window - 1 points
            keep = self.window - 1
            lo = self._end - keep
            self._t[:keep] = self._t[lo : self._end]
            self._v[:keep] = self._v[lo : self._end]
            self._start, self._end = 0, keep
        self._t[self._end] = int(timestamp)
        self._v[self._end] = value
        self._end += 1
        if self._end - self._start > self.window - 1:
            self._start = self._end - (self.window - 1)


def classic() -> EnsembleStreamDetector:
    """The reference (classic-mode) ensemble, consensus 6 of 9, 1,440-point window."""
    return EnsembleStreamDetector("classic")


def ensemble() -> EnsembleStreamDetector:
    """Skyline's default-mode ensemble (quirks fixed), consensus 6 of 9."""
    return EnsembleStreamDetector("default")
