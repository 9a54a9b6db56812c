"""Per-metric encodings made once and kept (``Memo``).

A pass over tens of thousands of metrics that re-encodes each metric's Redis key
(and the commands around it) spends more time formatting bytes than Redis spends
answering (docs/performance.md).  A ``Memo`` keeps ``make(metric)`` by metric name,
bounded: past ``limit`` names it starts over, so metrics that went away cost
nothing for long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

T = TypeVar("T")

LIMIT = 200_000  # names kept; about 50 MB at the longest encodings kept here


class Memo(Generic[T]):
    """``make(metric)``, made once per metric and kept (at most ``limit`` of them)."""

    def __init__(self, make: Callable[[str], T], limit: int = LIMIT) -> None:
        self._make = make
        self._limit = limit
        self._kept: dict[str, T] = {}

    def __call__(self, metric: str) -> T:
        got = self._kept.get(metric)
        if got is None:
            got = self._make(metric)
            if len(self._kept) >= self._limit:
                self._kept.clear()
            self._kept[metric] = got
        return got

    def many(self, metrics: Sequence[str]) -> list[T]:
        """``[self(m) for m in metrics]`` in one call (a call per metric costs more
        than the lookup)."""
        get = self._kept.get
        out = [get(m) for m in metrics]
        if None in out:
            out = [self(m) if x is None else x for m, x in zip(metrics, out, strict=True)]
        return cast(list[T], out)
