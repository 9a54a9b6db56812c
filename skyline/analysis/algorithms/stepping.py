"""Drive a vectorised streaming detector over many series, point by point.

``score_points`` is the one loop the analyzer and ``skyline nab run`` share: each
metric brings the points it has not yet been judged on (in timestamp order), and
step j advances every metric that still has a j-th point, all of them in one
numpy call.  A metric that receives a batch (a backfill, a late relay flush) has
every point judged, in order, exactly as if they had arrived one at a time.

``StreamAdapter`` wraps the same detector as a one-series ``learn_one`` /
``score_one`` detector (``skyline.analysis.algorithms.streaming.Detector``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from skyline.analysis.algorithms.state import StateLayout
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE


class VectorDetector(Protocol):
    """A streaming detector whose state for M metrics is one ``(M, D)`` array."""

    name: str
    layout: StateLayout

    def new_state(self, m: int) -> np.ndarray: ...

    def step(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Score one point per row, then learn it (NaN: the point was not judged)."""
        ...


def score_points(
    detector: VectorDetector,
    state: np.ndarray,
    timestamps: Sequence[np.ndarray],
    values: Sequence[np.ndarray],
) -> list[np.ndarray]:
    """Scores of every given point, row ``i`` of ``state`` taking ``timestamps[i]``
    and ``values[i]`` in order; ``state`` is advanced in place.  A point the
    detector does not judge (non-finite, or not after the row's last timestamp)
    scores NaN.  (``score_flat`` with the points in one array per field.)"""
    lengths = np.array([len(t) for t in timestamps], dtype=np.int64)
    if len(values) != len(timestamps) or any(
        len(v) != n for v, n in zip(values, lengths.tolist(), strict=True)
    ):
        raise ValueError("score_points: every series needs as many values as timestamps")
    owner = np.repeat(np.arange(len(lengths)), lengths)
    flat = score_flat(detector, state, owner, _concat(timestamps), _concat(values))
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


def score_flat(
    detector: VectorDetector, state: np.ndarray, owner: np.ndarray, t: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """Scores of the points ``(owner[j], t[j], v[j])``, sorted by ``owner`` (a row of
    ``state``), each row's points in the order given; ``state`` is advanced in
    place.  Step j advances every row that has a j-th point, in one ``step`` call:
    the whole ``state`` when every row has one (a pass in which every metric
    received a point), else a gathered copy of those rows."""
    m, n = len(state), len(owner)
    if n == 0:
        return np.zeros(0)
    counts = np.bincount(owner, minlength=m)
    if n == m and counts.max() == 1:  # one point for every row
        return np.asarray(detector.step(state, np.asarray(t, float), np.asarray(v, float)))
    starts = np.cumsum(counts) - counts
    pos = np.arange(n) - starts[owner]  # each point's place in its row's sequence
    longest = int(counts.max())
    t_mat, v_mat = np.full((m, longest), np.nan), np.full((m, longest), np.nan)
    t_mat[owner, pos], v_mat[owner, pos] = t, v
    s_mat = np.full((m, longest), np.nan)
    order = np.argsort(-counts, kind="stable")  # rows with more points first
    sorted_counts = counts[order]
    for j in range(longest):
        k = int(np.searchsorted(-sorted_counts, -j, side="left"))  # rows with > j points
        if k == m:
            s_mat[:, j] = detector.step(state, t_mat[:, j], v_mat[:, j])
            continue
        rows = order[:k]
        sub = state[rows]
        s_mat[rows, j] = detector.step(sub, t_mat[rows, j], v_mat[rows, j])
        state[rows] = sub
    return s_mat[owner, pos]


def _concat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return (
        np.concatenate([np.asarray(a, dtype=float) for a in arrays]) if len(arrays) else np.zeros(0)
    )


def default_vector_detector() -> VectorDetector:
    """The detector ``[analyzer] mode = "default"`` runs and ``skyline nab run`` scores
    by default: SpikeLevel, judging counters on their increase."""
    from skyline.analysis.algorithms.counters import CounterAware
    from skyline.analysis.algorithms.spike_level import SpikeLevel

    return CounterAware(SpikeLevel())


class StreamAdapter:
    """One series' ``learn_one``/``score_one`` view of a vectorised detector.

    ``score_one`` runs the detector's ``step`` on a copy of the state (so scoring
    never changes it) and ``learn_one`` of the same point keeps that copy; the
    scores are exactly those of ``score_points``.
    """

    def __init__(self, detector: VectorDetector) -> None:
        self.detector = detector
        self.state = detector.new_state(1)
        self._pending: tuple[float, float, float, np.ndarray] | None = None

    def _stepped(self, timestamp: float, value: float) -> tuple[float, np.ndarray]:
        p = self._pending
        same_value = p is not None and (p[1] == value or (p[1] != p[1] and value != value))
        if p is not None and p[0] == timestamp and same_value:
            return p[2], p[3]
        state = self.state.copy()
        score = float(self.detector.step(state, np.array([timestamp]), np.array([value]))[0])
        self._pending = (timestamp, value, score, state)
        return score, state

    def score_one(self, timestamp: float, value: float) -> float:
        score = self._stepped(timestamp, value)[0]
        return NEUTRAL_SCORE if score != score else score

    def learn_one(self, timestamp: float, value: float) -> None:
        self.state = self._stepped(timestamp, value)[1]
        self._pending = None
