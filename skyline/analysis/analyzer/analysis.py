"""One analysis pass over a set of series: counters made derivatives, then the ensemble.

Series that ``TimeSeriesStore.read_many`` decoded as rows of one 2-D arena
(``ChunkRow``; one arena per series length) are taken as that block, without
copying them: counters are detected on the whole block (``counter_rows``) and their
derivatives taken on it (``derivative_rows``).  Other series of equal length are
stacked into a block and checked as ``as_series`` would.  The compiled ensemble
(``settle_early``) judges each block's rows and each group of derivatives in place;
what it leaves runs as a batch ensemble per length; the rest go one at a time.
Every path gives exactly the per-series verdicts (tested).  The verdicts come back
as a ``VerdictMap``: batch results stay arrays, and a ``Verdict`` object is built
only when asked for.  Metrics that custom
algorithms (``[[custom_algorithms]]``) apply to go through
``skyline.analysis.algorithms.custom.run_many_with_custom`` instead.  No Redis here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyline.analysis.algorithms import (
    BatchResult,
    EnsembleOptions,
    Verdict,
    run_ensemble_batch,
    run_ensemble_many,
    settle_early,
)
from skyline.analysis.algorithms.classic import TRUE
from skyline.analysis.algorithms.custom import (
    CustomAlgorithmError,
    CustomRunner,
    run_many_with_custom,
)
from skyline.analysis.algorithms.prepare import (
    counter_rows,
    derivative_rows,
    is_counter,
    non_negative_derivative,
)
from skyline.runtime.daemon import StartupError
from skyline.settings import Settings
from skyline.store.timeseries import ChunkRow, Series

# smaller groups of equal-length series are evaluated one by one: a batch of 2 costs
# less than 2 one-series runs, a batch of 1 more than one (docs/performance.md)
MIN_BATCH = 2


class VerdictMap(Mapping[str, Verdict]):
    """The verdicts of one pass by metric name, in the order the series were given.

    Rows evaluated in batch keep their ``BatchResult`` arrays; a ``Verdict`` is built
    when one is looked up (all of them at the first lookup or iteration over values).
    ``anomalies()`` and ``counts()`` answer without building one per metric.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._parts: list[tuple[np.ndarray, BatchResult]] = []
        self._single: dict[int, Verdict] = {}
        self._all: list[Verdict] | None = None
        self._index: dict[str, int] | None = None

    def add_batch(self, idx: np.ndarray, res: BatchResult) -> None:
        """Result row ``r`` of ``res`` is the verdict of ``names[idx[r]]``."""
        self._parts.append((idx, res))

    def add(self, i: int, verdict: Verdict) -> None:
        self._single[i] = verdict

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._positions()

    def __getitem__(self, name: str) -> Verdict:
        return self._built()[self._positions()[name]]

    def values(self) -> ValuesView[Verdict]:
        return _Values(self)

    def items(self) -> ItemsView[str, Verdict]:
        return _Items(self)

    def _positions(self) -> dict[str, int]:
        if self._index is None:
            self._index = {name: i for i, name in enumerate(self.names)}
        return self._index

    def _built(self) -> list[Verdict]:
        if self._all is None:
            built: list[Any] = [None] * len(self.names)
            for idx, res in self._parts:
                for i, verdict in zip(idx.tolist(), res.verdicts(), strict=True):
                    built[i] = verdict
            for i, verdict in self._single.items():
                built[i] = verdict
            self._all = built
        return self._all

    def anomalies(self) -> dict[str, Verdict]:
        """The anomalous verdicts only, in input order."""
        found = [(i, v) for i, v in self._single.items() if v.anomalous]
        for idx, res in self._parts:
            rows = np.flatnonzero(res.anomalous == 1).tolist()
            found += zip(idx[rows].tolist(), res.verdicts(rows), strict=True)
        return {self.names[i]: v for i, v in sorted(found, key=lambda p: p[0])}

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """How many verdicts had each skip reason, and how many triggered each
        algorithm (anomalous or not): what the daemon counts over every verdict."""
        skips: Counter[str] = Counter(v.skip for v in self._single.values() if v.skip)
        triggered: Counter[str] = Counter(a for v in self._single.values() for a in v.triggered)
        for _, res in self._parts:
            skips.update(s for s in res.skip if s is not None)
            n = (res.votes == TRUE).sum(axis=0).tolist()
            triggered.update({a: c for a, c in zip(res.algorithms, n, strict=True) if c})
        return skips, triggered


def anomalous_verdicts(verdicts: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """The anomalous verdicts of a pass (of ``analyse``'s result, whichever mapping it
    is), without building the others' when it is a ``VerdictMap``."""
    if isinstance(verdicts, VerdictMap):
        return verdicts.anomalies()
    return {name: v for name, v in verdicts.items() if v.anomalous}


def verdict_counts(verdicts: Mapping[str, Verdict]) -> tuple[Counter[str], Counter[str]]:
    """How many verdicts had each skip reason and how many triggered each algorithm
    (``VerdictMap.counts()`` for any mapping of verdicts)."""
    if isinstance(verdicts, VerdictMap):
        return verdicts.counts()
    skips = Counter(v.skip for v in verdicts.values() if v.skip)
    return skips, Counter(a for v in verdicts.values() for a in v.triggered)


class _Values(ValuesView[Verdict]):
    """A ``VerdictMap``'s values, iterated from its list rather than key by key."""

    _mapping: VerdictMap

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self._mapping._built())


class _Items(ItemsView[str, Verdict]):
    _mapping: VerdictMap

    def __iter__(self) -> Iterator[tuple[str, Verdict]]:
        return zip(self._mapping.names, self._mapping._built(), strict=True)


def load_customs(settings: Settings, app: str = "analyzer") -> CustomRunner | None:
    """The custom algorithms configured for ``app``, loaded into their worker process;
    None when there are none.  A table that cannot be used is a ``StartupError``."""
    if not any(app in c.use_with for c in settings.custom_algorithms):
        return None
    try:
        return CustomRunner(settings.custom_algorithms, app)
    except CustomAlgorithmError as exc:
        raise StartupError(str(exc)) from None


def analyse(
    series: Mapping[str, Series],
    now: float,
    options: EnsembleOptions,
    detect_counters: bool,
    customs: CustomRunner | None = None,
) -> tuple[Mapping[str, Verdict], set[str]]:
    """Verdicts for every series (a ``VerdictMap``, or a dict with ``customs``), and
    the names analysed as counters.  ``customs`` adds the custom algorithms to the
    metrics they apply to; their timeouts and errors are in ``customs.take_counts()``,
    never raised."""
    if not customs:
        return _classic_pass(series, now, options, detect_counters)
    counters: set[str] = set()
    by_name = {}
    for name, s in series.items():
        if detect_counters and is_counter(s):
            counters.add(name)
            s = non_negative_derivative(s)
        by_name[name] = s
    found = run_many_with_custom(by_name, now=now, runner=customs, options=options)
    return found, counters


@dataclass
class _Block:
    """Series ``idx`` (positions in the pass) are rows ``rows`` of ``t2d``/``v2d``;
    ``checked`` when every row is known prepared (sorted, unique, finite)."""

    t2d: np.ndarray
    v2d: np.ndarray
    rows: np.ndarray
    idx: np.ndarray
    checked: bool


@dataclass
class _Piece:
    """Rows ``rows`` of ``t2d``/``v2d`` go to the ensemble as series ``idx``."""

    t2d: np.ndarray
    v2d: np.ndarray
    rows: np.ndarray
    idx: np.ndarray


def _classic_pass(
    series: Mapping[str, Series], now: float, options: EnsembleOptions, detect_counters: bool
) -> tuple[VerdictMap, set[str]]:
    """Counters made derivatives block by block; each block's plain rows and each
    derivative group are judged in place by ``settle_early``, which settles every row
    when each algorithm of the ensemble has a compiled row kernel (the default nine
    do).  The rows it leaves (an ensemble naming other algorithms) run one batch
    ensemble per length: a batch of numpy kernels has a fixed cost (about half a
    millisecond), so a pass over series of a dozen lengths (as between roomba's
    rewrites) runs a dozen batches, not one per block and derivative group."""
    names = list(series)
    out = VerdictMap(names)
    counters: set[str] = set()
    blocks, loose = _blocks(list(series.values()))
    pool: dict[int, list[_Piece]] = {}
    for b in blocks:
        if not b.checked:
            ok = _prepared_rows(b.t2d, b.v2d)
            loose += b.idx[~ok].tolist()
            b.rows, b.idx = b.rows[ok], b.idx[ok]
        counter = counter_rows(b.v2d, b.rows) if detect_counters else np.zeros(len(b.rows), bool)
        plain = ~counter
        if plain.any():
            _settle(out, pool, _Piece(b.t2d, b.v2d, b.rows[plain], b.idx[plain]), now, options)
        if not counter.any():
            continue
        rows, idx = b.rows[counter], b.idx[counter]
        counters.update(names[i] for i in idx.tolist())
        for sub, t_d, v_d in derivative_rows(_take(b.t2d, rows), _take(b.v2d, rows)):
            _settle(out, pool, _Piece(t_d, v_d, np.arange(len(sub)), idx[sub]), now, options)
    for pieces in pool.values():
        idx = np.concatenate([p.idx for p in pieces])
        if len(idx) < MIN_BATCH:
            loose += idx.tolist()
            continue
        if len(pieces) == 1:
            t2d, v2d, rows = pieces[0].t2d, pieces[0].v2d, pieces[0].rows
        else:
            t2d, v2d = _gather(pieces, "t2d"), _gather(pieces, "v2d")
            rows = np.arange(len(idx))
        out.add_batch(idx, run_ensemble_batch(t2d, v2d, rows=rows, now=now, options=options,
                                              validate=False))  # fmt: skip
    seq = list(series.values())
    loose.sort()
    prepared = []
    for i in loose:  # one by one, exactly as before the block path
        s = seq[i]
        if detect_counters and is_counter(s):
            counters.add(names[i])
            s = non_negative_derivative(s)
        prepared.append(s)
    for i, verdict in zip(loose, run_ensemble_many(prepared, now=now, options=options),
                          strict=True):  # fmt: skip
        out.add(i, verdict)
    return out, counters


def _settle(out: VerdictMap, pool: dict[int, list[_Piece]], piece: _Piece, now: float,
            options: EnsembleOptions) -> None:  # fmt: skip
    """The verdicts ``settle_early`` reaches on the piece's rows in place (every row when
    each algorithm has a compiled row kernel); the other rows join the pool of their
    length."""
    res, left = settle_early(piece.t2d, piece.v2d, piece.rows, now=now, options=options)
    settled = np.ones(len(piece.rows), bool)
    settled[left] = False
    if settled.any():
        out.add_batch(piece.idx[settled], res.take(settled))
    if len(left):
        rest = _Piece(piece.t2d, piece.v2d, piece.rows[left], piece.idx[left])
        pool.setdefault(piece.t2d.shape[1], []).append(rest)


def _blocks(seq: Sequence[Series]) -> tuple[list[_Block], list[int]]:
    """Blocks of the series: the ``ChunkRow`` rows of each decode arena (checked when
    decoded), then other int64/float64 series stacked by length (at least
    ``MIN_BATCH`` of one length; not yet checked).  The positions left over."""
    chunks: dict[int, tuple[np.ndarray, list[int], list[int]]] = {}
    by_len: dict[int, list[int]] = {}
    loose: list[int] = []
    for i, s in enumerate(seq):
        arena = _arena_of(s)
        if arena is not None:
            entry = chunks.get(id(arena))
            if entry is None:
                entry = chunks[id(arena)] = (arena, [], [])
            entry[1].append(s.row)  # type: ignore[attr-defined]
            entry[2].append(i)
        elif _plain_arrays(s):
            by_len.setdefault(len(s[1]), []).append(i)
        else:
            loose.append(i)
    blocks = []
    for arena, rows, idx in chunks.values():
        if len(idx) >= MIN_BATCH:
            t2d, v2d = arena[0], arena[1].view(np.float64)
            blocks.append(_Block(t2d, v2d, np.array(rows), np.array(idx), True))
        else:
            loose += idx
    for length, idx in by_len.items():
        if length and len(idx) >= MIN_BATCH:
            t2d = np.stack([seq[i][0] for i in idx])
            v2d = np.stack([seq[i][1] for i in idx])
            blocks.append(_Block(t2d, v2d, np.arange(len(idx)), np.array(idx), False))
        else:
            loose += idx
    return blocks, loose


def _arena_of(s: Any) -> np.ndarray | None:
    """The decode arena a ``ChunkRow`` is a row of (None for any other series)."""
    if type(s) is ChunkRow:  # built by the decoder, row and arena consistent
        return s.arena
    arena = getattr(s, "arena", None)
    if not isinstance(arena, np.ndarray) or arena.ndim != 3:
        return None
    return arena if arena.shape[2] == len(s.values) and 0 <= s.row < arena.shape[1] else None


def _plain_arrays(s: Any) -> bool:
    t, v = s[0], s[1]
    return (
        isinstance(t, np.ndarray)
        and isinstance(v, np.ndarray)
        and t.dtype == np.int64
        and v.dtype == np.float64
        and t.ndim == 1
        and t.shape == v.shape
    )


def _prepared_rows(t2d: np.ndarray, v2d: np.ndarray) -> np.ndarray:
    """Rows that ``as_series`` would take as they are: strictly increasing, finite."""
    ok = np.isfinite(v2d).all(axis=1)
    if t2d.shape[1] > 1:
        ok &= (t2d[:, 1:] > t2d[:, :-1]).all(axis=1)
    return ok


def _gather(pieces: list[_Piece], field: str) -> np.ndarray:
    """The pieces' rows of ``field`` stacked: copied once, straight into the result."""
    first = getattr(pieces[0], field)
    out = np.empty((sum(len(p.rows) for p in pieces), first.shape[1]), first.dtype)
    at = 0
    for p in pieces:
        np.take(getattr(p, field), p.rows, axis=0, out=out[at : at + len(p.rows)])
        at += len(p.rows)
    return out


def _take(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``a[rows]``, without a copy when ``rows`` is every row in order."""
    if len(rows) == len(a) and np.array_equal(rows, np.arange(len(a))):
        return a
    return a[rows]


def publish_custom_counts(customs: CustomRunner | None, counters: Any, log: Any) -> None:
    """Move the custom algorithms' counts (calls, timeouts, errors, skipped per
    algorithm, worker_restarts) to the daemon's counters as ``custom_algorithms.*``;
    timeouts and errors are also logged as one warning."""
    if not customs:
        return
    counts = customs.take_counts()
    for name, n in counts.items():
        counters.inc(f"custom_algorithms.{name}", n)
    bad = {k: n for k, n in counts.items() if k.split(".")[0] in ("timeouts", "errors")}
    if bad:
        log.warning("custom algorithms: %s", ", ".join(f"{k}={n}" for k, n in sorted(bad.items())))
