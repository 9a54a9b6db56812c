"""The one definition of "the window an anomaly was judged on", shared by training
(``profiles.training_window``), checks (``agent.Ionosphere.window``) and learning.

A window is ``(end - duration, end]``.  For ``duration <= [skyline] full_duration``
it always comes from the raw store, at the metric's own resolution, the same points
analyzer judged; when the store does not reach back that far (a metric younger than
the duration, roomba trimmed past the start) the window is simply shorter.  Only a
longer duration (a mirage-length profile) is read from the rollup history, and such
a window carries the history's resolution so it is compared only with profiles of
that resolution (``features_profiles.resolution``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from skyline.store.timeseries import TimeSeriesStore

HistoryFn = Callable[[str, int, int], np.ndarray]  # metric, start, end -> (n, 2)


@dataclass(frozen=True)
class Window:
    """``points`` (n, 2) [timestamp, value]; ``resolution`` None for raw points (any
    profile of the duration may be compared), else the history's bucket size."""

    points: np.ndarray
    resolution: int | None = None

    @property
    def values(self) -> np.ndarray:
        return self.points[:, 1]


def slice_window(timestamps: np.ndarray, values: np.ndarray, end: int, duration: int) -> np.ndarray:
    """The (n, 2) points of ``(end - duration, end]``."""
    ts = np.asarray(timestamps)
    keep = (ts > end - duration) & (ts <= end)
    return np.column_stack([ts[keep].astype(np.float64), np.asarray(values)[keep]])


def raw_window(store: TimeSeriesStore, metric: str, end: int, duration: int) -> np.ndarray:
    """``(end - duration, end]`` of the raw store (shorter if the store holds less)."""
    s = store.read(metric)
    return slice_window(s.timestamps, s.values, end, duration)


def history_window(history: HistoryFn, metric: str, end: int, duration: int) -> np.ndarray:
    """``(end - duration, end]`` of the history source."""
    arr = np.asarray(history(metric, end - duration, end), dtype=np.float64)
    if not len(arr):
        return np.empty((0, 2))
    return slice_window(arr[:, 0], arr[:, 1], end, duration)


def resolution_of(points: np.ndarray) -> int:
    """The median step of (n, 2) points (0 for fewer than 2): what
    ``features_profiles.resolution`` stores."""
    steps = np.diff(points[:, 0]) if len(points) > 1 else np.empty(0)
    return int(np.median(steps)) if len(steps) else 0


def window_for(store: TimeSeriesStore, history: HistoryFn | None, history_resolution: int,
               full_duration: int, metric: str, end: int, duration: int) -> Window:  # fmt: skip
    """The window a check compares with profiles of ``duration``: raw up to
    ``full_duration``, the history (with its resolution) beyond it."""
    if duration <= full_duration or history is None:
        return Window(raw_window(store, metric, end, duration))
    return Window(history_window(history, metric, end, duration), history_resolution)


def covers(points: np.ndarray, end: int, duration: int) -> bool:
    """Whether ``points`` span all of ``(end - duration, end]``, within two of their
    steps at either end (a profile learnt from less would not match full windows)."""
    if len(points) < 2:
        return False
    slack = 2 * resolution_of(points)
    return bool(points[0, 0] <= end - duration + slack and points[-1, 0] >= end - slack)
