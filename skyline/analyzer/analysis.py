"""One analysis pass over a set of series: counters made derivatives, then the ensemble.

Series of equal length go through the batch (2-D numpy) evaluation, which gives
exactly the per-series verdicts; the rest go one at a time.  Metrics that custom
algorithms (``[[custom_algorithms]]``) apply to go through
``skyline.algorithms.custom.run_many_with_custom`` instead; the others stay on the
batch path.  No Redis here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyline.algorithms import Verdict, run_ensemble_many
from skyline.algorithms.custom import CustomAlgorithmError, CustomRunner, run_many_with_custom
from skyline.daemon import StartupError
from skyline.settings import AnalyzerSection, Settings
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
) -> tuple[dict[str, Verdict], set[str]]:
    """Verdicts for every series, and the names analysed as counters.  Series of equal
    length are evaluated together as one 2-D batch (same verdicts, much faster).
    ``customs`` adds the custom algorithms to the metrics they apply to; their
    timeouts and errors are in ``customs.take_counts()``, never raised."""
    counters: set[str] = set()
    names = list(series)
    prepared = []
    for name in names:
        s = series[name]
        if detect_counters and is_counter(s):
            counters.add(name)
            s = non_negative_derivative(s)
        prepared.append(s)
    if customs:
        by_name = dict(zip(names, prepared, strict=True))
        found = run_many_with_custom(by_name, now=now, runner=customs, **options.kwargs())
        return found, counters
    verdicts = run_ensemble_many(prepared, now=now, **options.kwargs())
    return dict(zip(names, verdicts, strict=True)), counters


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
