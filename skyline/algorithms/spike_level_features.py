"""Small-state feature helpers of ``SpikeLevel`` (``skyline.algorithms.spike_level``).

Each helper owns a few named fields of the detector's state row
(``StateLayout``) and updates M rows at once in numpy:

* ``BlockSpread``: a long-memory robust spread of a residual stream in about
  ``2 * blocks + block`` floats instead of one float per residual.  Absolute
  residuals fill a block of ``block`` values; a full block pushes its median and
  mean into rings of the last ``blocks`` blocks, and the spread (recomputed only
  then) is ``max(1.4826 * median of the block medians, 0.5 * mean of the block
  means)``: a MAD over ``block * blocks`` residuals, floored at half their mean.
* ``DailyProfile``: a compact daily-seasonal forecast.  The day is cut into
  ``slots`` bins of equal length (by the timestamp's time of day, UTC); each
  finished bin's mean value is kept for the last ``days + 1`` days (one row per
  day in a ring, tagged with its day number), and the forecast of a point is the
  median of its bin's means on the previous ``days`` days (at least two needed).
"""

from __future__ import annotations

import numpy as np

from skyline.algorithms.state import StateLayout, nan_count_rows, nan_median_rows

DAY = 86400.0
MAD_SCALE = 1.4826


class BlockSpread:
    """Robust spread of a residual stream from a ring of block medians and means."""

    def __init__(self, prefix: str, block: int, blocks: int, ready: int) -> None:
        self.p = prefix
        self.block = max(int(block), 1)
        self.blocks = max(int(blocks), 1)
        self.ready = max(int(ready), 1)  # completed blocks before the spread is known

    def fields(self) -> tuple[tuple[str, int], ...]:
        p = self.p
        return ((f"{p}_blk", self.block), (f"{p}_fill", 1), (f"{p}_med", self.blocks),
                (f"{p}_mean", self.blocks), (f"{p}_spread", 1))  # fmt: skip

    def init(self, lay: StateLayout, state: np.ndarray) -> None:
        lay.view(state, f"{self.p}_fill")[:] = 0.0

    def spread(self, lay: StateLayout, state: np.ndarray) -> np.ndarray:
        """Each row's spread (NaN until ``ready`` blocks are complete)."""
        return lay.view(state, f"{self.p}_spread")

    def add(self, lay: StateLayout, state: np.ndarray, x: np.ndarray, mask: np.ndarray) -> None:
        """Learn ``|x|`` on the masked rows."""
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        p = self.p
        blk, fill = lay.view(state, f"{p}_blk"), lay.view(state, f"{p}_fill")
        pos = fill[rows].astype(np.intp)
        blk[rows, pos] = np.abs(x[rows])
        fill[rows] = pos + 1
        done = rows[pos + 1 >= self.block]
        if not len(done):
            return
        full = blk[done]
        med, mean = lay.view(state, f"{p}_med"), lay.view(state, f"{p}_mean")
        for ring, stat in ((med, np.median(full, axis=1)), (mean, full.mean(axis=1))):
            ring[done, :-1] = ring[done, 1:]
            ring[done, -1] = stat
        fill[done] = 0.0
        m, a = med[done], mean[done]
        cnt = nan_count_rows(m)
        with np.errstate(invalid="ignore"):
            s = np.maximum(MAD_SCALE * nan_median_rows(m), 0.5 * np.nanmean(a, axis=1))
        lay.view(state, f"{p}_spread")[done] = np.where(cnt >= self.ready, s, np.nan)


class DailyProfile:
    """Median of the same time-of-day bin's mean on the previous days."""

    def __init__(self, prefix: str, slots: int, days: int) -> None:
        self.p = prefix
        self.slots = int(slots)
        self.days = max(int(days), 1)
        self.rows = self.days + 1  # the day being filled plus the days forecast from

    def fields(self) -> tuple[tuple[str, int], ...]:
        p = self.p
        return ((f"{p}_bins", self.rows * self.slots), (f"{p}_day", self.rows),
                (f"{p}_cur", 3))  # fmt: skip  # cur: bin key, sum, count

    def init(self, lay: StateLayout, state: np.ndarray) -> None:
        cur = lay.view(state, f"{self.p}_cur")
        cur[:, 0] = -1.0
        cur[:, 1:] = 0.0

    def _key(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(day number, bin) of each timestamp (0, 0 for a non-finite one)."""
        tt = np.where(np.isfinite(t), t, 0.0)
        day = np.floor(tt / DAY)
        slot = np.floor((tt - day * DAY) * self.slots / DAY)
        return day, np.clip(slot, 0, self.slots - 1)

    def forecast(self, lay: StateLayout, state: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Each row's seasonal forecast at ``t`` (NaN when fewer than two days know it)."""
        day, slot = self._key(t)
        bins, tags = lay.view(state, f"{self.p}_bins"), lay.view(state, f"{self.p}_day")
        rows = np.arange(len(t))
        past = np.full((len(t), self.days), np.nan)
        for j in range(1, self.days + 1):
            r = np.mod(day - j, self.rows).astype(np.intp)
            col = r * self.slots + slot.astype(np.intp)
            past[:, j - 1] = np.where(tags[rows, r] == day - j, bins[rows, col], np.nan)
        med = nan_median_rows(past)
        return np.where(nan_count_rows(past) >= 2, med, np.nan)

    def learn(self, lay: StateLayout, state: np.ndarray, t: np.ndarray, v: np.ndarray,
              mask: np.ndarray) -> None:  # fmt: skip
        """Add the masked rows' points to their bins, closing a bin when a point
        falls in another one."""
        p = self.p
        cur = lay.view(state, f"{p}_cur")
        day, slot = self._key(t)
        key = day * self.slots + slot
        close = np.flatnonzero(mask & (cur[:, 2] > 0) & (cur[:, 0] != key))
        if len(close):
            bins, tags = lay.view(state, f"{p}_bins"), lay.view(state, f"{p}_day")
            k = cur[close, 0]
            cday = np.floor(k / self.slots)
            cslot = (k - cday * self.slots).astype(np.intp)
            r = np.mod(cday, self.rows).astype(np.intp)
            stale = tags[close, r] != cday  # a new day takes over these ring rows
            if stale.any():
                sr, rr = close[stale], r[stale]
                in_row = np.arange(bins.shape[1]) // self.slots == rr[:, None]
                sub = bins[sr]
                sub[in_row] = np.nan
                bins[sr] = sub
            tags[close, r] = cday
            bins[close, r * self.slots + cslot] = cur[close, 1] / cur[close, 2]
            cur[close, 1:] = 0.0
        rows = np.flatnonzero(mask)
        cur[rows, 0] = key[rows]
        cur[rows, 1] += v[rows]
        cur[rows, 2] += 1.0


class DailyPeak:
    """The largest surprise of each time-of-day bin on each of the last days: a
    surprise that recurs every day at about this time is no news."""

    def __init__(self, prefix: str, slots: int, days: int, reach: int) -> None:
        self.p = prefix
        self.slots = int(slots)
        self.days = max(int(days), 1)
        self.rows = self.days + 1
        self.reach = int(reach)  # neighbouring bins each side that count too

    def fields(self) -> tuple[tuple[str, int], ...]:
        return ((f"{self.p}_bins", self.rows * self.slots), (f"{self.p}_day", self.rows))

    def init(self, lay: StateLayout, state: np.ndarray) -> None:
        return None

    def _key(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tt = np.where(np.isfinite(t), t, 0.0)
        day = np.floor(tt / DAY)
        slot = np.floor((tt - day * DAY) * self.slots / DAY)
        return day, np.clip(slot, 0, self.slots - 1).astype(np.intp)

    def recurring(self, lay: StateLayout, state: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Smallest, over the previous ``days`` days, of the largest surprise within
        ``reach`` bins of this time of day (NaN when a day is unknown)."""
        day, slot = self._key(t)
        bins, tags = lay.view(state, f"{self.p}_bins"), lay.view(state, f"{self.p}_day")
        rows = np.arange(len(t))
        out = np.full(len(t), np.inf)
        for j in range(1, self.days + 1):
            r = np.mod(day - j, self.rows).astype(np.intp)
            best = np.full(len(t), np.nan)
            for d in range(-self.reach, self.reach + 1):
                col = r * self.slots + np.clip(slot + d, 0, self.slots - 1)
                best = np.fmax(best, bins[rows, col])
            best = np.where(tags[rows, r] == day - j, best, np.nan)
            out = np.minimum(out, best)  # NaN propagates: every day must be known
        return out

    def learn(self, lay: StateLayout, state: np.ndarray, t: np.ndarray, x: np.ndarray,
              mask: np.ndarray) -> None:  # fmt: skip
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        bins, tags = lay.view(state, f"{self.p}_bins"), lay.view(state, f"{self.p}_day")
        day, slot = self._key(t[rows])
        r = np.mod(day, self.rows).astype(np.intp)
        stale = tags[rows, r] != day
        if stale.any():
            sr, rr = rows[stale], r[stale]
            in_row = np.arange(bins.shape[1]) // self.slots == rr[:, None]
            sub = bins[sr]
            sub[in_row] = np.nan
            bins[sr] = sub
            tags[sr, rr] = day[stale]
        col = r * self.slots + slot
        bins[rows, col] = np.fmax(bins[rows, col], x[rows])
