"""One analysis pass over a set of series: counters made derivatives, then the ensemble.

Series of equal length go through the batch (2-D numpy) evaluation, which gives
exactly the per-series verdicts; the rest go one at a time.  Pure: no Redis here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from skyline.algorithms import Verdict, run_ensemble_many
from skyline.settings import AnalyzerSection
from skyline.timeseries import Series


@dataclass(frozen=True)
class EnsembleOptions:
    """The ensemble's arguments, taken once from the settings."""

    mode: str
    algorithms: tuple[str, ...]
    consensus: int
    min_length: int
    stale_period: int
    max_boredom: int
    boredom_set_size: int

    @classmethod
    def from_settings(cls, cfg: AnalyzerSection) -> EnsembleOptions:
        return cls(cfg.mode, tuple(cfg.algorithms), cfg.consensus, cfg.min_tolerable_length,
                   cfg.stale_period, cfg.max_tolerable_boredom, cfg.boredom_set_size)  # fmt: skip

    def kwargs(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "algorithms": self.algorithms,
            "consensus": self.consensus,
            "min_length": self.min_length,
            "stale_period": self.stale_period,
            "max_boredom": self.max_boredom,
            "boredom_set_size": self.boredom_set_size,
        }


def is_counter(series: Series) -> bool:
    """A monotonic counter: non-negative, mostly rising, falling only at rare resets."""
    v = series.values
    if len(v) < 3 or v.min() < 0:
        return False
    d = np.diff(v)
    rising, falling = int((d > 0).sum()), int((d < 0).sum())
    return rising >= len(d) // 2 and falling <= max(1, len(d) // 100)


def non_negative_derivative(series: Series) -> Series:
    """Per-step increase of a counter; a step across a reset (a fall) is dropped."""
    d = np.diff(series.values)
    keep = d >= 0
    return Series(series.timestamps[1:][keep], d[keep])


def analyse(
    series: Mapping[str, Series], now: float, options: EnsembleOptions, detect_counters: bool
) -> tuple[dict[str, Verdict], set[str]]:
    """Verdicts for every series, and the names analysed as counters.  Series of equal
    length are evaluated together as one 2-D batch (same verdicts, much faster)."""
    counters: set[str] = set()
    names = list(series)
    prepared = []
    for name in names:
        s = series[name]
        if detect_counters and is_counter(s):
            counters.add(name)
            s = non_negative_derivative(s)
        prepared.append(s)
    verdicts = run_ensemble_many(prepared, now=now, **options.kwargs())
    return dict(zip(names, verdicts, strict=True)), counters
