"""Mirage's decision on one anomaly, given its window of history (no Redis here).

1. Too little history (fewer buckets than ``min_points`` or than ``min_coverage`` of
   the window): the anomaly is CONFIRMED unjudged -- mirage never makes an anomaly
   vanish because it lacks the data to disagree.
2. The ensemble (the analyzer's algorithms and consensus by default) over the
   window: not anomalous -> CLEARED.  A skip (Boring, TooShort...) confirms unjudged.
3. The anomalous daily peak override, which can only clear: when the window shows
   at least ``daily_peaks`` earlier days whose peak near the same time of day
   (within ``daily_peak_window``) came within ``daily_peak_tolerance`` of the
   anomaly or went beyond it, the anomaly is a recurring daily pattern -> CLEARED.
   Both are measured as excursions from the window's median (a value 20 % away from
   a level of 1,000 is a big anomaly, not a "similar" one): a day counts when its
   highest value there rose at least (1 - tolerance) times as far above the median
   as the anomaly did (lowest value and below, for an anomaly below the median).
   "Or beyond" because the analyzer usually catches a daily peak on its rising
   edge, before its top: the earlier days' tops are higher, and the same pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from skyline.analysis.algorithms import EnsembleOptions, run_ensemble
from skyline.settings import Settings
from skyline.store.timeseries import Series

DAY = 86400


@dataclass(frozen=True)
class Judgement:
    cleared: bool
    reason: str
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JudgeOptions:
    """``ensemble``: the ensemble's options ([mirage] algorithms, consensus, mode and
    min_points; the analyzer's boredom rules); the window sets stale_period and
    full_duration per check."""

    ensemble: EnsembleOptions
    min_points: int
    min_coverage: float
    daily_peaks: int
    tolerance: float
    peak_window: int

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeOptions:
        m, a = settings.mirage, settings.analyzer
        ensemble = EnsembleOptions(mode=m.mode, algorithms=tuple(m.algorithms),
                                   consensus=m.consensus, min_length=m.min_points,
                                   max_boredom=a.max_tolerable_boredom,
                                   boredom_set_size=a.boredom_set_size)  # fmt: skip
        return cls(ensemble, m.min_points, m.min_coverage, m.daily_peaks,
                   m.daily_peak_tolerance, m.daily_peak_window)  # fmt: skip


def judge(series: Series, hours: int, resolution: int, opts: JudgeOptions) -> Judgement:
    """Clear or confirm the anomaly at the end of ``series`` (``hours`` of buckets of
    ``resolution`` seconds, the anomaly's bucket last)."""
    window = hours * 3600
    expected = window // resolution
    n = len(series)
    detail: dict = {"hours": hours, "resolution": resolution, "window_points": n}
    if n < max(opts.min_points, opts.min_coverage * expected, 3):
        return Judgement(False, f"insufficient history: {n} of {expected} buckets over "
                         f"{hours} h; alerted unconfirmed", detail)  # fmt: skip
    ensemble = replace(opts.ensemble, stale_period=window, full_duration=window)
    verdict = run_ensemble(series, now=float(series.timestamps[-1]), options=ensemble)
    detail["triggered"] = list(verdict.triggered)
    votes = f"{len(verdict.triggered)}/{len(ensemble.algorithms)} algorithms"
    where = f"over {hours} h at {resolution} s"
    if verdict.skip is not None:
        return Judgement(False, f"could not judge {where} ({verdict.skip}); alerted", detail)
    if not verdict.anomalous:
        return Judgement(True, f"normal {where}: {votes}", detail)
    peaks = similar_daily_peaks(series, opts.peak_window, opts.tolerance)
    detail["daily_peaks"] = peaks
    if opts.daily_peaks and peaks >= opts.daily_peaks:
        return Judgement(True, f"recurs daily: {peaks} similar peaks {where} ({votes})", detail)
    return Judgement(False, f"anomalous {where}: {votes}", detail)


def similar_daily_peaks(series: Series, window: int, tolerance: float) -> int:
    """How many earlier days have a peak within ``window`` seconds of the last
    bucket's time of day whose excursion from the window's median reaches the last
    bucket's excursion, less ``tolerance`` (a fraction of it)."""
    t, v = series.timestamps, series.values
    ts, value = int(t[-1]), float(v[-1])
    base = float(np.median(v))
    excursion = value - base
    if excursion == 0:
        return 0
    high = excursion > 0
    count = 0
    for day in range(1, int((ts - t[0]) // DAY) + 1):
        centre = ts - day * DAY
        a, b = np.searchsorted(t, [centre - window, centre + window + 1])
        if a >= b:
            continue
        peak = float(v[a:b].max() if high else v[a:b].min())
        if (peak - base) / excursion >= 1 - tolerance:
            count += 1
    return count
