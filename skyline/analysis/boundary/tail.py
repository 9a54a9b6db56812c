"""The in-memory recent data of one watched metric, fed incrementally from the store.

Boundary judges each datapoint once, when it is new.  A ``Tail`` keeps the store's
read cursor (``TimeSeriesStore.read_since_many``: only the bytes appended since the
last read are fetched), the last ``keep`` seconds of data (sorted, de-duplicated, finite)
that detect_drop_off_cliff and min_average look back over, and the timestamp of the
last datapoint judged.  ``ingest`` returns which of its points are new.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skyline.store.timeseries import Cursor, sort_dedupe

MIN_KEEP_POINTS = 64  # kept whatever ``keep`` says, so the cliff's 30 points are there


@dataclass
class Ingested:
    new: range  # indexes into the tail of the points to judge, oldest first
    nonfinite: int = 0  # new records dropped: NaN or infinite value
    late: int = 0  # new records at or before the last judged timestamp: ignored


@dataclass
class Tail:
    cursor: Cursor | None = None
    t: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    v: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    last_judged: int | None = None  # None: nothing judged yet (then only the newest is)

    def ingest(self, records: np.ndarray, whole: bool, keep: int) -> Ingested:
        """Take records from ``read_since``: the whole series (``whole``) or new ones."""
        rt = records["t"].astype(np.int64)
        rv = records["v"].astype(np.float64)
        floor = self.last_judged
        if floor is None:  # first sight: judge only the newest point, not a day of history
            floor = int(rt.max()) - 1 if len(rt) else 0
        fresh = rt > floor
        nonfinite = int(np.count_nonzero(fresh & ~np.isfinite(rv)))
        if whole:
            self.t, self.v = sort_dedupe(rt, rv)
            late = 0
        else:
            late = int(np.count_nonzero(~fresh))
            t, v = sort_dedupe(rt[fresh], rv[fresh])
            self.t = np.concatenate((self.t, t))
            self.v = np.concatenate((self.v, v))
        self._trim(keep)
        start = int(np.searchsorted(self.t, floor, side="right"))
        return Ingested(range(start, len(self.t)), nonfinite, late)

    def _trim(self, keep: int) -> None:
        if not len(self.t):
            return
        start = int(np.searchsorted(self.t, self.t[-1] - keep, side="right"))
        start = min(start, max(0, len(self.t) - MIN_KEEP_POINTS))
        if start:
            self.t, self.v = self.t[start:].copy(), self.v[start:].copy()
