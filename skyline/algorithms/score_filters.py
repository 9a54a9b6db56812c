"""Causal transformations of a stream of anomaly scores.

``RepeatSuppressor`` implements "one alert per event".  NAB (and an operator)
rewards the *earliest* detection of an anomaly; every further alert in the same
event earns nothing inside an anomaly window and costs a false positive outside
one.  A point whose raw score is not higher than a raw score of one of the last
``window`` points would, at *any* threshold that flags it, have been preceded by
an alert at least as strong: it is a repeat, so its score is damped.  A rising run
(a ramp, a shift that grows) keeps scoring, because each point is a new maximum.

No threshold is involved, so the transformation does not need to know which
threshold the caller will pick; the sliding maximum is kept in a monotone deque
(O(1) amortised per point, ``window`` floats of memory).
"""

from __future__ import annotations

import math
from collections import deque


class SlidingMax:
    """Maximum of the last ``size`` pushed values (monotone deque)."""

    def __init__(self, size: int) -> None:
        self.size = max(int(size), 1)
        self._n = 0
        self._dq: deque[tuple[int, float]] = deque()  # (index, value), values decreasing

    def push(self, x: float) -> None:
        while self._dq and self._dq[-1][1] <= x:
            self._dq.pop()
        self._dq.append((self._n, x))
        self._n += 1
        while self._dq[0][0] <= self._n - 1 - self.size:
            self._dq.popleft()

    def value(self) -> float:
        """The maximum of the last ``size`` values (-inf when nothing was pushed)."""
        return self._dq[0][1] if self._dq else -math.inf


class RepeatSuppressor:
    """Damp a score that repeats (does not exceed) one of the last ``window`` scores.

    ``damped(raw)`` is the score to report for a point with raw score ``raw``;
    ``push(raw)`` records the point's *raw* score once it is learned (a damped
    point still counts as the level later points must beat).
    """

    def __init__(self, window: int = 60, damping: float = 0.5) -> None:
        self.window = int(window)
        self.damping = float(damping)
        self._max = SlidingMax(max(self.window, 1))

    def damped(self, raw: float) -> float:
        if self.window <= 0 or raw <= 0.0 or self._max.value() < raw:
            return raw
        return raw * self.damping

    def push(self, raw: float) -> None:
        if self.window > 0 and math.isfinite(raw):
            self._max.push(raw)
