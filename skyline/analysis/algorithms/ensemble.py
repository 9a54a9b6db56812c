"""The consensus ensemble over one series (reference §4.3 steps 2, 5 and 7).

``run_ensemble`` prepares the input if needed, applies the skip checks, runs the
algorithms in order with the optimised early exit, and decides by consensus.
``mode="classic"`` reproduces the reference decision (an error/None vote counts
towards "anomalous"); ``mode="default"`` only counts True votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyline.analysis.algorithms.classic import (
    FALSE,
    NONE,
    TRUE,
    Context,
    default_order,
    etsy_order,
    run_kernel,
)
from skyline.analysis.algorithms.classic._fused import NOT_RUN, ensemble_rows, leading_codes
from skyline.analysis.algorithms.exceptions import check_skip
from skyline.analysis.algorithms.options import EnsembleOptions
from skyline.analysis.algorithms.prepare import Block, as_series

__all__ = [
    "CLASSIC_ORDER",
    "ETSY_ORDER",
    "Verdict",
    "decide",
    "run_ensemble",
    "stop_early",
]

_VOTE: dict[int, bool | None] = {TRUE: True, FALSE: False, NONE: None}

# earthgecko's optimised default settings.ALGORITHMS order (cheap / frequent first): the
# default ensemble, from each algorithm's registered position
CLASSIC_ORDER: tuple[str, ...] = default_order()
# Etsy's original order (also earthgecko's MIRAGE_ALGORITHMS)
ETSY_ORDER: tuple[str, ...] = etsy_order()


@dataclass(frozen=True)
class Verdict:
    """The ensemble's decision on one series.

    ``anomalous`` is None when ``skip`` applied.  ``run`` lists the algorithms that
    ran (in order; early exit leaves the rest out), ``votes``/``scores`` hold their
    results, ``triggered`` those that voted True.  ``value``/``timestamp`` are the
    last point (None for an empty series).
    """

    anomalous: bool | None
    skip: str | None = None
    run: tuple[str, ...] = ()
    triggered: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    votes: dict[str, bool | None] = field(default_factory=dict)
    value: float | None = None
    timestamp: int | None = None


def stop_early(n_false: int, n_none: int, n_algorithms: int, consensus: int, mode: str) -> bool:
    """True once the remaining algorithms cannot change the outcome.

    classic (reference step 5): count(False) >= len(algorithms) - consensus + 1.
    default: None never counts as anomalous, so None votes count with the Falses.
    """
    against = n_false if mode == "classic" else n_false + n_none
    return against >= n_algorithms - consensus + 1


def decide(votes: Sequence[bool | None], n_algorithms: int, consensus: int, mode: str) -> bool:
    """The consensus decision (reference step 7).

    classic: algorithms not run count as None; all None -> not anomalous; else
    anomalous iff count(False) <= len(algorithms) - consensus (so None votes help).
    default: anomalous iff count(True) >= consensus.
    """
    n_true = sum(1 for v in votes if v is True)
    if mode != "classic":
        return n_true >= consensus
    n_false = sum(1 for v in votes if v is False)
    if n_true == 0 and n_false == 0:
        return False
    return n_false <= n_algorithms - consensus


def run_ensemble(
    series: Any, *, now: float, options: EnsembleOptions | None = None, **changes: Any
) -> Verdict:
    """Skip checks, then the algorithms in order with early exit, then consensus.

    ``series`` is a prepared ``Series`` (or any ``(timestamps, values)`` pair, which
    is prepared first).  ``options`` (default: the defaults) with ``changes``
    (``mode="classic"``...) say how to judge.  Algorithm errors become None votes;
    nothing escapes except ``ValueError`` for bad options (unknown algorithm,
    consensus < 1, bad mode) and ``TypeError`` for an unknown option.
    """
    opts = EnsembleOptions.of(options, **changes)
    algorithms, consensus, mode = opts.algorithms, opts.consensus, opts.mode
    try:
        s = as_series(series)
    except (TypeError, ValueError, IndexError):
        s = as_series(((), ()))
    value = float(s.values[-1]) if len(s) else None
    ts = int(s.timestamps[-1]) if len(s) else None
    skip = check_skip(
        s,
        now,
        min_length=opts.min_length,
        stale_period=opts.stale_period,
        max_boredom=opts.max_boredom,
        boredom_set_size=opts.boredom_set_size,
        mode=mode,
    )
    if skip is not None:
        return Verdict(None, skip.value, value=value, timestamp=ts)
    ctx = opts.context(now)
    block = Block.of(s)
    votes: dict[str, bool | None] = {}
    scores: dict[str, float] = {}
    codes = leading_codes(algorithms)  # in the fused loop, as the batch runs them
    fused, fused_scores, decided = ensemble_rows(block.t, block.v, np.zeros(1, np.int64), codes,
                                                 opts.stop_at, ctx)  # fmt: skip
    for j, code in enumerate(fused[0].tolist()):
        if code != NOT_RUN:
            votes[algorithms[j]] = _VOTE[code]
            scores[algorithms[j]] = float(fused_scores[0, j])
    n_false = sum(1 for v in votes.values() if v is False)
    n_none = sum(1 for v in votes.values() if v is None)
    for name in algorithms[len(codes) :] if not decided[0] else ():
        vote, score = _run_one(name, block, ctx)
        votes[name], scores[name] = vote, score
        n_false += vote is False
        n_none += vote is None
        if opts.early_exit and stop_early(n_false, n_none, len(algorithms), consensus, mode):
            break
    return Verdict(
        anomalous=decide(list(votes.values()), len(algorithms), consensus, mode),
        run=tuple(votes),
        triggered=tuple(n for n, v in votes.items() if v is True),
        scores=scores,
        votes=votes,
        value=value,
        timestamp=ts,
    )


def _run_one(name: str, block: Block, ctx: Context) -> tuple[bool | None, float]:
    try:
        votes, scores = run_kernel(name, block, ctx)
    except Exception:  # noqa: BLE001 - an algorithm error is a None vote, as in the reference
        return None, 0.0
    return _VOTE[int(votes[0])], float(scores[0])
