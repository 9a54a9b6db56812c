"""Small-state feature helpers of ``SpikeLevel`` (``skyline.analysis.algorithms.spike_level``).

Each helper owns a few named fields of the detector's state row
(``StateLayout``) and updates M rows at once in numpy:

* ``BlockSpread``: long-memory robust spreads of residual streams in
  ``2 * blocks + block + 2`` floats per stream instead of one float per
  residual.  Absolute residuals fill a block of ``block`` values; a full block
  pushes its median and mean into rings of the last ``blocks`` blocks, and the
  spread (recomputed only then) is ``max(1.4826 * median of the block medians,
  0.5 * mean of the block means)``: a MAD over ``block * blocks`` residuals,
  floored at half their mean.
* ``DailyBins``: per time-of-day bin statistics (mean or maximum) of the last
  ``days`` days in a ring of ``days * slots`` cells, for the seasonal forecast
  and the recurring-surprise reference.
"""

from __future__ import annotations

import numpy as np

from skyline.analysis.algorithms.state import StateLayout, nan_count_rows, nan_median_rows

DAY = 86400.0
MAD_SCALE = 1.4826


class BlockSpread:
    """Robust spreads of ``len(names)`` residual streams from rings of block
    medians and means (one channel per stream, all updated in one call)."""

    def __init__(self, prefix: str, names: tuple[str, ...], block: int, blocks: int,
                 ready: tuple[int, ...]) -> None:  # fmt: skip
        self.p = prefix
        self.names = names
        self.ch = len(names)
        self.block = max(int(block), 1)
        self.blocks = max(int(blocks), 1)
        self.ready = np.maximum(np.asarray(ready, dtype=float), 1.0)  # blocks per channel

    def fields(self) -> tuple[tuple[str, int], ...]:
        p, c = self.p, self.ch
        return ((f"{p}_blk", c * self.block), (f"{p}_fill", c), (f"{p}_med", c * self.blocks),
                (f"{p}_mean", c * self.blocks), (f"{p}_spread", c))  # fmt: skip

    def init(self, lay: StateLayout, state: np.ndarray) -> None:
        lay.view(state, f"{self.p}_fill")[:] = 0.0

    def spread(self, lay: StateLayout, state: np.ndarray, name: str) -> np.ndarray:
        """Each row's spread of stream ``name`` (NaN until enough blocks)."""
        col = lay.slice(f"{self.p}_spread").start + self.names.index(name)
        return state[:, col]

    def add(self, lay: StateLayout, state: np.ndarray, x: np.ndarray, mask: np.ndarray) -> None:
        """Learn ``|x|`` (M, channels) where ``mask`` (M, channels) is set."""
        rows, chans = np.nonzero(mask)
        if not len(rows):
            return
        p, b, k = self.p, self.block, self.blocks
        blk, fill = lay.view(state, f"{p}_blk"), state[:, lay.slice(f"{p}_fill")]
        pos = fill[rows, chans].astype(np.intp)
        blk[rows, chans * b + pos] = np.abs(x[rows, chans])
        fill[rows, chans] = pos + 1
        full_at = pos + 1 >= b
        if not full_at.any():
            return
        r, c = rows[full_at], chans[full_at]
        full = blk[r[:, None], c[:, None] * b + np.arange(b)]
        ring_cols = c[:, None] * k + np.arange(k)
        med, mean = lay.view(state, f"{p}_med"), lay.view(state, f"{p}_mean")
        for ring, stat in ((med, np.median(full, axis=1)), (mean, full.mean(axis=1))):
            kept = ring[r[:, None], ring_cols[:, 1:]]
            ring[r[:, None], ring_cols[:, :-1]] = kept
            ring[r, ring_cols[:, -1]] = stat
        fill[r, c] = 0.0
        m, a = med[r[:, None], ring_cols], mean[r[:, None], ring_cols]
        with np.errstate(invalid="ignore"):
            s = np.maximum(MAD_SCALE * nan_median_rows(m), 0.5 * np.nanmean(a, axis=1))
        ok = nan_count_rows(m) >= self.ready[c]
        state[:, lay.slice(f"{p}_spread")][r, c] = np.where(ok, s, np.nan)


class DailyBins:
    """Per time-of-day bin statistics of the last ``days`` days in a ring of
    ``days * slots`` cells, for ``channels`` series of values at once.

    The day is cut into ``slots`` bins of equal length (UTC time of day); a bin's
    key is ``day * slots + slot``.  Points accumulate in the current bin (sum or
    maximum, and a count) until a point falls in another bin; the bin is then
    closed: its mean (``reduce="mean"``) or maximum (``"max"``) goes to cell
    ``key % ring``, and the cells of the bins skipped since the last closed one
    are cleared.  A cell therefore holds bin ``q`` exactly when
    ``last - ring < q <= last`` (``last``: the last closed key) and bin ``q`` saw
    a point; ``lookup`` returns NaN otherwise.
    """

    def __init__(self, prefix: str, slots: int, days: int, channels: int, reduce: str) -> None:
        self.p = prefix
        self.slots = max(int(slots), 1)
        self.days = max(int(days), 1)
        self.ch = int(channels)
        self.ring = self.days * self.slots
        self.mean = reduce == "mean"

    def fields(self) -> tuple[tuple[str, int], ...]:
        p = self.p  # cur: open bin key, count, then one accumulator per channel
        return ((f"{p}_cells", self.ring * self.ch), (f"{p}_last", 1), (f"{p}_cur", 2 + self.ch))

    def init(self, lay: StateLayout, state: np.ndarray) -> None:
        lay.view(state, f"{self.p}_last")[:] = -np.inf
        cur = lay.view(state, f"{self.p}_cur")
        cur[:, 0] = -1.0
        cur[:, 1] = 0.0

    def key(self, t: np.ndarray) -> np.ndarray:
        """Bin key of each timestamp (0 for a non-finite one)."""
        tt = np.where(np.isfinite(t), t, 0.0)
        day = np.floor(tt / DAY)
        slot = np.clip(np.floor((tt - day * DAY) * self.slots / DAY), 0, self.slots - 1)
        return day * self.slots + slot

    def lookup(self, lay: StateLayout, state: np.ndarray, q: np.ndarray) -> np.ndarray:
        """(M, L, channels): each row's statistics of bins ``q`` (M, L) (NaN for a
        bin not held)."""
        cells = lay.view(state, f"{self.p}_cells")
        last = lay.view(state, f"{self.p}_last")[:, None]
        held = (q <= last) & (q > last - self.ring)
        cell = np.mod(np.where(held, q, 0.0), self.ring).astype(np.intp)
        cols = cell[:, :, None] * self.ch + np.arange(self.ch)
        vals = cells[np.arange(len(q))[:, None, None], cols]
        return np.where(held[:, :, None], vals, np.nan)

    def learn(self, lay: StateLayout, state: np.ndarray, key: np.ndarray, x: np.ndarray,
              mask: np.ndarray) -> None:  # fmt: skip
        """Add the masked rows' ``x`` (M, channels) to their current bins (``key``:
        each point's bin, from ``key(t)``)."""
        cur = lay.view(state, f"{self.p}_cur")
        close = np.flatnonzero(mask & (cur[:, 1] > 0) & (cur[:, 0] != key))
        if len(close):
            self._close(lay, state, close)
        rows = np.flatnonzero(mask)
        fresh = cur[rows, 1] == 0
        acc = cur[rows, 2:]
        if self.mean:
            acc = np.where(fresh[:, None], 0.0, acc) + x[rows]
        else:
            acc = np.where(fresh[:, None], x[rows], np.fmax(acc, x[rows]))
        cur[rows, 2:] = acc
        cur[rows, 0] = key[rows]
        cur[rows, 1] += 1.0

    def _close(self, lay: StateLayout, state: np.ndarray, rows: np.ndarray) -> None:
        cur = lay.view(state, f"{self.p}_cur")
        cells = lay.view(state, f"{self.p}_cells")
        last = lay.view(state, f"{self.p}_last")
        k, prev = cur[rows, 0], last[rows]
        gap = np.where(np.isfinite(prev), k - prev - 1, self.ring)  # bins never seen
        g = np.flatnonzero(gap > 0)
        if len(g):
            start = np.where(np.isfinite(prev[g]), prev[g] + 1, 0.0)
            cell_of_col = np.arange(self.ring * self.ch) // self.ch
            skipped = np.mod(cell_of_col[None, :] - start[:, None], self.ring) < gap[g, None]
            sub = cells[rows[g]]
            sub[skipped] = np.nan
            cells[rows[g]] = sub
        acc = cur[rows, 2:]
        val = acc / cur[rows, 1][:, None] if self.mean else acc
        cell = np.mod(k, self.ring).astype(np.intp)
        cells[rows[:, None], cell[:, None] * self.ch + np.arange(self.ch)] = val
        last[rows] = k
        cur[rows, 1] = 0.0
