"""Name -> algorithm.  Per-series functions take ``(series, ctx)`` and return a
``Result``; kernels take ``(block, ctx)`` and return per-row ``(votes, scores)``."""

from __future__ import annotations

from collections.abc import Callable

from skyline.analysis.algorithms import classic
from skyline.analysis.algorithms.classic import KERNELS, Context, Result
from skyline.store.timeseries import Series

__all__ = ["ALGORITHMS", "KERNELS", "get"]

ALGORITHMS: dict[str, Callable[[Series, Context], Result]] = {
    name: getattr(classic, name) for name in KERNELS
}


def get(name: str) -> Callable[[Series, Context], Result]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise KeyError(f"unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}") from None
