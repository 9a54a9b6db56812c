"""The ensemble over many equal-length series at once (rows of 2-D arrays).

``run_ensemble_batch`` gives exactly the per-series verdicts of
:func:`~skyline.analysis.algorithms.ensemble.run_ensemble` on each row -- skip, votes,
which algorithms ran (early exit included), triggered set and decision -- because
both paths run the same kernels, and every statistic is a reduction along a row.
The ensemble's leading algorithms with a compiled row kernel (all nine by default)
run in one loop over the rows, read in place (``classic/_fused.py``), each row
leaving as soon as consensus is out of reach; ks_test only calls scipy/statsmodels
for rows whose windows hold enough points.  Algorithms without one (an added numpy
kernel) run after it on the undecided rows, in chunks (cache-sized) from which
decided rows leave.  Rows that are not prepared (unsorted, duplicate timestamps,
non-finite values) are handed to the per-series path.  ``settle_early`` is the
part that copies nothing, for callers that hold rows in place (the analyzer).

``run_ensemble_many`` takes a list of series of any lengths, batches those that
share a length and runs the rest one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyline.analysis.algorithms.classic import FALSE, NONE, TRUE, Context, run_kernel
from skyline.analysis.algorithms.classic._fused import NOT_RUN, ensemble_rows, leading_codes
from skyline.analysis.algorithms.ensemble import Verdict, run_ensemble
from skyline.analysis.algorithms.exceptions import Skip, boring_rows
from skyline.analysis.algorithms.options import EnsembleOptions
from skyline.analysis.algorithms.prepare import Block, as_series
from skyline.store.timeseries import Series

__all__ = ["BatchResult", "run_ensemble_batch", "run_ensemble_many", "settle_early"]

_VOTE = {TRUE: True, FALSE: False, NONE: None}


@dataclass
class BatchResult:
    """Struct-of-arrays verdicts of m series.

    ``anomalous`` int8 per row (1, 0, or -1 when skipped); ``skip`` the skip reason
    or None; ``votes`` int8 ``(m, len(algorithms))`` (1, 0, -1 = None, -2 = not
    run); ``scores`` float64 (NaN when not run); ``values``/``timestamps`` the last
    point of each row.  ``verdict(i)`` builds the per-series ``Verdict``.
    """

    algorithms: tuple[str, ...]
    anomalous: np.ndarray
    skip: list[str | None]
    votes: np.ndarray
    scores: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.anomalous)

    def take(self, rows: np.ndarray) -> BatchResult:
        """The result of rows ``rows`` (indices or a mask) only."""
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows
        return BatchResult(self.algorithms, self.anomalous[idx], [self.skip[i] for i in idx.tolist()],
                           self.votes[idx], self.scores[idx], self.values[idx],
                           self.timestamps[idx])  # fmt: skip

    def verdict(self, i: int) -> Verdict:
        value = None if np.isnan(self.values[i]) else float(self.values[i])
        ts = None if self.timestamps[i] < 0 and value is None else int(self.timestamps[i])
        if self.skip[i] is not None:
            return Verdict(None, self.skip[i], value=value, timestamp=ts)
        ran = [j for j, v in enumerate(self.votes[i]) if v != NOT_RUN]
        votes = {self.algorithms[j]: _VOTE[int(self.votes[i, j])] for j in ran}
        return Verdict(
            anomalous=bool(self.anomalous[i] == 1),
            run=tuple(votes),
            triggered=tuple(n for n, v in votes.items() if v is True),
            scores={self.algorithms[j]: float(self.scores[i, j]) for j in ran},
            votes=votes,
            value=value,
            timestamp=ts,
        )

    def verdicts(self, rows: Sequence[int] | None = None) -> list[Verdict]:
        """``[self.verdict(i) for i in rows]`` (all rows by default), built from lists
        taken once per call, with the per-pattern parts (algorithms run, votes,
        triggered) shared between rows of one vote pattern."""
        rows = range(len(self)) if rows is None else rows
        votes, scores = self.votes.tolist(), self.scores.tolist()
        values, stamps = self.values.tolist(), self.timestamps.tolist()
        anomalous, names = self.anomalous.tolist(), self.algorithms
        patterns: dict[tuple[int, ...], _Pattern] = {}
        out = []
        for i in rows:
            value = None if values[i] != values[i] else values[i]
            ts = None if stamps[i] < 0 and value is None else stamps[i]
            if self.skip[i] is not None:
                out.append(Verdict(None, self.skip[i], value=value, timestamp=ts))
                continue
            key = tuple(votes[i])
            pattern = patterns.get(key)
            if pattern is None:
                pattern = patterns[key] = _pattern(key, names)
            ran, run, vote_map, triggered = pattern
            row = scores[i]
            out.append(Verdict(
                anomalous=anomalous[i] == 1,
                run=run,
                triggered=triggered,
                scores={names[j]: row[j] for j in ran},
                votes=dict(vote_map),
                value=value,
                timestamp=ts,
            ))  # fmt: skip
        return out


_Pattern = tuple[tuple[int, ...], tuple[str, ...], dict[str, bool | None], tuple[str, ...]]


def _pattern(votes: tuple[int, ...], names: tuple[str, ...]) -> _Pattern:
    """For one row's int8 votes: the indices and names of the algorithms that ran,
    {name: vote}, and the names that voted True."""
    ran = tuple(j for j, v in enumerate(votes) if v != NOT_RUN)
    vote_map = {names[j]: _VOTE[votes[j]] for j in ran}
    return ran, tuple(vote_map), vote_map, tuple(n for n, v in vote_map.items() if v is True)


def run_ensemble_batch(
    timestamps_2d: Any,
    values_2d: Any,
    *,
    now: float,
    options: EnsembleOptions | None = None,
    chunk_rows: int = 256,
    validate: bool = True,
    rows: Any = None,
    **changes: Any,
) -> BatchResult:
    """Evaluate each row as ``run_ensemble`` would (same ``options`` and ``changes``);
    rows are metrics.

    With ``validate`` (default) rows that are not sorted/unique/finite go through
    ``run_ensemble`` individually; pass ``validate=False`` only for rows you know
    are prepared.  ``rows`` (indices) evaluates only those rows, result row ``r``
    being input row ``rows[r]``, without first copying them out of the matrices.
    """
    opts = EnsembleOptions.of(options, **changes)
    algorithms = opts.algorithms
    t, v = _as_2d(timestamps_2d, values_2d)
    sel = np.arange(len(v)) if rows is None else np.asarray(rows, np.int64).reshape(-1)
    m, n = len(sel), v.shape[1]
    res = _new_result(t, v, sel, algorithms)
    good = _valid_rows(t[sel], v[sel]) if validate and n and m else np.ones(m, bool)
    for i in np.flatnonzero(~good):
        _fill(res, int(i), run_ensemble((t[sel[i]], v[sel[i]]), now=now, options=opts))
    active = _apply_skips(res, t, v, sel, good, now, opts)
    active, first = _leading_votes(res, t, v, sel, active, now, opts)
    ctx = opts.context(now)
    for start in range(0, len(active), chunk_rows):
        chunk = active[start : start + chunk_rows]
        _run_chunk(res, chunk, _block(t, v, sel[chunk]), ctx, opts, first)
    return res


def settle_early(t2d: np.ndarray, v2d: np.ndarray, rows: np.ndarray, *, now: float,
                 options: EnsembleOptions) -> tuple[BatchResult, np.ndarray]:  # fmt: skip
    """What ``run_ensemble_batch(t2d, v2d, rows=rows, validate=False)`` decides without
    copying a row: the skips, and every row the compiled algorithms settle (all of
    them when every algorithm of the ensemble has a row kernel, as the default ones
    do).  Returns the result (row ``r`` is ``rows[r]``) and the result rows it left
    undecided (their entries are not final: give those rows to ``run_ensemble_batch``)."""
    res = _new_result(t2d, v2d, rows, options.algorithms)
    active = _apply_skips(res, t2d, v2d, rows, np.ones(len(rows), bool), now, options)
    active, _ = _leading_votes(res, t2d, v2d, rows, active, now, options)
    return res, active


def _new_result(t: np.ndarray, v: np.ndarray, sel: np.ndarray,
                algorithms: tuple[str, ...]) -> BatchResult:  # fmt: skip
    """The result of rows ``sel``, nothing decided yet."""
    m, n, k = len(sel), v.shape[1], len(algorithms)
    return BatchResult(
        algorithms,
        np.full(m, -1, np.int8),
        [None] * m,
        np.full((m, k), NOT_RUN, np.int8),
        np.full((m, k), np.nan),
        v[sel, -1] if n else np.full(m, np.nan),
        t[sel, -1] if n else np.full(m, -1, np.int64),
    )


def _leading_votes(res: BatchResult, t: np.ndarray, v: np.ndarray, sel: np.ndarray,
                   active: np.ndarray, now: float,
                   opts: EnsembleOptions) -> tuple[np.ndarray, int]:  # fmt: skip
    """The ensemble's leading algorithms that have a row kernel, on the rows
    ``sel[active]`` read in place, with early exit: records their votes, settles the
    rows they rule out (never anomalous: consensus is out of reach), and decides the
    rows that ran every algorithm.  Returns the rows left and how many algorithms
    they ran."""
    codes = leading_codes(opts.algorithms)
    if not len(codes) or not len(active):
        return active, 0
    votes, scores, decided = ensemble_rows(t, v, sel[active], codes, opts.stop_at,
                                           opts.context(now))  # fmt: skip
    p = len(codes)
    res.votes[active, :p] = votes
    res.scores[active, :p] = scores
    res.anomalous[active[decided]] = 0
    if p == len(opts.algorithms):
        _decide(res, active[~decided], opts)
        return active[:0], p
    return active[~decided], p


def _block(t: np.ndarray, v: np.ndarray, src: np.ndarray) -> Block:
    """The rows ``src`` as a block: views when they are consecutive, else copies."""
    a, b = int(src[0]), int(src[-1]) + 1
    if b - a == len(src):
        return Block(t[a:b], v[a:b])
    return Block(t[src], v[src])


def _as_2d(timestamps_2d: Any, values_2d: Any) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values_2d, dtype=np.float64)
    t = np.asarray(timestamps_2d)
    if v.ndim != 2 or t.shape != v.shape:
        raise ValueError(f"need two 2-D arrays of one shape, got {t.shape} and {v.shape}")
    if t.dtype != np.int64:
        tf = t.astype(np.float64)
        with np.errstate(invalid="ignore"):
            t = np.where(np.isfinite(tf), tf, -1).astype(np.int64)
            t[~np.isfinite(tf)] = -1  # such rows fail validation below
    return np.ascontiguousarray(t), np.ascontiguousarray(v)


def _valid_rows(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v).all(axis=1)
    if t.shape[1] > 1:
        ok &= (t[:, 1:] > t[:, :-1]).all(axis=1)
    return ok & (t[:, 0] >= 0)


def _apply_skips(res: BatchResult, t: np.ndarray, v: np.ndarray, sel: np.ndarray,
                 good: np.ndarray, now: float, opts: EnsembleOptions) -> np.ndarray:  # fmt: skip
    """Record the skip of each ``good`` row (rows ``sel`` of ``t``/``v``); the rows left
    to run."""
    n = v.shape[1]
    rows = np.flatnonzero(good)
    if n == 0 or n < opts.min_length:
        reason = (Skip.EmptyTimeseries if n == 0 else Skip.TooShort).value
        for i in rows.tolist():
            res.skip[i] = reason
        return rows[:0]
    stale = now - t[sel[rows], -1] > opts.stale_period
    fresh = rows[~stale]
    last = opts.max_boredom
    tail = v[:, -last:] if last > 0 else v
    boring = boring_rows(tail[sel[fresh]], last, opts.boredom_set_size, opts.mode)
    for i in rows[stale].tolist():
        res.skip[i] = Skip.Stale.value
    for i in fresh[boring].tolist():
        res.skip[i] = Skip.Boring.value
    return fresh[~boring]


def _run_chunk(res: BatchResult, rows: np.ndarray, block: Block, ctx: Context,
               opts: EnsembleOptions, first: int) -> None:  # fmt: skip
    """The algorithms from position ``first`` on (the ones before have voted) on the
    undecided ``rows``, with early exit, then the consensus."""
    k = len(res.algorithms)
    consensus, mode = opts.consensus, opts.mode
    pos = np.arange(len(rows))  # chunk position of each block row
    live = np.ones(len(rows), bool)  # block rows still undecided
    before = res.votes[rows, :first]
    n_false = (before == FALSE).sum(axis=1)
    n_none = (before == NONE).sum(axis=1)
    for j in range(first, k):
        name = res.algorithms[j]
        if not live.all() and (name == "ks_test" or live.mean() < 0.9):
            block, pos = block.take(np.flatnonzero(live)), pos[live]
            live = np.ones(len(pos), bool)
        if not len(pos):
            break
        votes, scores = _kernel_or_rows(name, block, ctx)
        p = pos[live]
        res.votes[rows[p], j] = votes[live]
        res.scores[rows[p], j] = scores[live]
        n_false[p] += votes[live] == FALSE
        n_none[p] += votes[live] == NONE
        if opts.early_exit:
            against = n_false[pos] if mode == "classic" else n_false[pos] + n_none[pos]
            live &= against < k - consensus + 1
    _decide(res, rows, opts)


def _decide(res: BatchResult, rows: np.ndarray, opts: EnsembleOptions) -> None:
    """The consensus on the votes of ``rows`` (``decide``, on arrays)."""
    k, consensus = len(res.algorithms), opts.consensus
    ran = res.votes[rows]
    n_true = (ran == TRUE).sum(axis=1)
    n_f = (ran == FALSE).sum(axis=1)
    if opts.mode == "classic":
        anomalous = ((n_true + n_f) > 0) & (n_f <= k - consensus)
    else:
        anomalous = n_true >= consensus
    res.anomalous[rows] = anomalous.astype(np.int8)


def _kernel_or_rows(name: str, block: Block, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """The kernel on the whole block; if it raises, row by row (an erring row votes None,
    as it would alone)."""
    try:
        return run_kernel(name, block, ctx)
    except Exception:  # noqa: BLE001 - isolate the failing row(s) below
        votes = np.full(block.m, NONE, np.int8)
        scores = np.zeros(block.m)
        for i in range(block.m):
            try:
                vv, ss = run_kernel(name, block.take(np.array([i])), ctx)
            except Exception:  # noqa: BLE001 - an algorithm error is a None vote
                continue
            votes[i], scores[i] = vv[0], ss[0]
        return votes, scores


def _fill(res: BatchResult, i: int, verdict: Verdict) -> None:
    res.skip[i] = verdict.skip
    res.values[i] = np.nan if verdict.value is None else verdict.value
    res.timestamps[i] = -1 if verdict.timestamp is None else verdict.timestamp
    if verdict.skip is not None:
        return
    res.anomalous[i] = 1 if verdict.anomalous else 0
    for j, name in enumerate(res.algorithms):
        if name in verdict.votes:
            vote = verdict.votes[name]
            res.votes[i, j] = NONE if vote is None else int(vote)
            res.scores[i, j] = verdict.scores[name]


def run_ensemble_many(
    series: Sequence[Any],
    *,
    now: float,
    options: EnsembleOptions | None = None,
    min_batch: int = 8,
    **changes: Any,
) -> list[Verdict]:
    """Verdicts for series of any lengths: equal-length groups of at least
    ``min_batch`` series are batched, the rest run one by one.  ``options`` and
    ``changes`` are those of ``run_ensemble``."""
    opts = EnsembleOptions.of(options, **changes)
    prepared: list[Series] = []
    for s in series:
        try:
            prepared.append(as_series(s))
        except (TypeError, ValueError, IndexError):
            prepared.append(Series.empty())
    out: list[Verdict | None] = [None] * len(prepared)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(prepared):
        by_len.setdefault(len(s), []).append(i)
    for length, idx in by_len.items():
        if length == 0 or len(idx) < min_batch:
            for i in idx:
                out[i] = run_ensemble(prepared[i], now=now, options=opts)
            continue
        t = np.stack([prepared[i].timestamps for i in idx])
        v = np.stack([prepared[i].values for i in idx])
        res = run_ensemble_batch(t, v, now=now, options=opts, validate=False)
        for r, i in enumerate(idx):
            out[i] = res.verdict(r)
    return [o for o in out if o is not None]
