"""Streaming detectors behind the ``skyline.algorithms.streaming.Detector`` interface.

``SpikeLevelDetector`` (registered as ``default``) adds a second, slower feature
to ``RobustSeasonalDetector`` (registered as ``seasonal``, the previous default):

* *spike*: the seasonal detector's surprise, the robust |z| of the point against
  the local forecast (median of the last 5 values) or the same-time-of-day
  forecast, whichever has been more accurate recently;
* *level*: the mean of the last 6 values (this one included) minus the median of
  the 120 values before them, as a robust z against this statistic's own recent
  spread (MAD of its last 1,000 values).  It sees sustained shifts and ramps that
  the local median absorbs within a few points.  When the same-time-of-day
  forecast is the more accurate one, the level surprise is the smaller of that z
  and the z of the mean of the last 6 seasonal residuals, so a rise that happens
  every day at that time is not a level change.

Each feature's surprise is compared, on a log scale (``log1p``), with its own
decaying peak (half-life 1,000 points, floor a z of 3, peaks only fed after a
300-point burn-in so start-up transients do not mute the file).  Working in
log1p keeps one enormous early surprise (a z of 1e6 against a spread of ~0) from
muting a file for thousands of points.  The two ratios r are combined as odds
that add: with the log-logistic CDF ``o / (1 + o)`` and odds ``o = r^4``, the
score is ``(r_spike^4 + r_level^4) / (1 + r_spike^4 + r_level^4)``, so a point
that is mildly surprising on both features outranks one that is mildly
surprising on one (a plain max of the two ratios scored 56.2 on the NAB
development corpus, the sum of odds 59.8).

Last, one alert per event (``score_filters.RepeatSuppressor``): a point whose
score does not exceed one of the last 60 points' scores is halved, because at
any threshold that flags it an alert at least as strong was raised less than 60
points ago.  Rising runs keep scoring; no threshold is assumed.

``RobustSeasonalDetector`` scores each point by how
surprising it is under two simple forecasts learned on the fly:

* a *local* forecast, the median of the last few values (follows level shifts
  within a few points, ignores single outliers);
* a *seasonal* forecast, when the timestamps show a sampling step that divides a
  day: the median of the values at the same time of day on the previous days
  (looked up by timestamp slot, so gaps and jitter do not shift it).

Each forecast's residual is scaled by a robust spread (MAD, floored at half the
mean absolute residual) of its own last 1,000 residuals, giving a robust z-score;
the forecast with the smaller recent error is trusted.  A level shift is surprising
at the jump and absorbed by the local median within two points; a variance change
raises the z-scores until the rolling spread has adapted to it.

The surprise |z| is divided by this series' own decaying peak surprise (half-life
1,000 points, never below a z of 3), so a heavy-tailed series does not alert more
than a quiet one and repeated alerts inside one anomaly fade: a point scores
high only when it is more surprising than anything seen recently.  The ratio is
mapped to [0, 1] through a log-logistic CDF (0.5 at the reference surprise), which
keeps scores ordered instead of saturating at 1.0.

Everything is O(window) per point with bounded windows; no labels, no look-ahead.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from skyline.algorithms.score_filters import RepeatSuppressor
from skyline.algorithms.streaming import NEUTRAL_SCORE

DAY = 86400.0


class NullDetector:
    """Never detects: every score is 0.0 (NAB's null detector)."""

    def learn_one(self, timestamp: float, value: float) -> None:
        return None

    def score_one(self, timestamp: float, value: float) -> float:
        return 0.0


def _median(values) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return math.nan
    mid = n // 2
    return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])


class _Scale:
    """Robust spread of a stream of residuals (MAD, refreshed every few points)."""

    def __init__(self, size: int, refresh: int = 8) -> None:
        self.buf: deque[float] = deque(maxlen=size)
        self.refresh = refresh
        self.value = math.nan
        self._since = 0

    def add(self, x: float) -> None:
        self.buf.append(abs(x))
        self._since += 1
        if self._since >= self.refresh or math.isnan(self.value):
            self._since = 0
            arr = np.fromiter(self.buf, dtype=float, count=len(self.buf))
            with np.errstate(all="ignore"):
                self.value = float(max(1.4826 * np.median(arr), 0.5 * arr.mean()))

    def ready(self, n: int) -> bool:
        return len(self.buf) >= n


class RobustSeasonalDetector:
    """Robust, seasonality-aware streaming anomaly scorer (see the module docstring).

    Parameters (one set for every series; nothing is tuned per file):
    ``warmup`` points before any score; ``local_k`` values in the local median;
    ``scale_size`` residuals behind each MAD; ``seasons`` previous days compared;
    ``half_life`` (points) of the decaying peak surprise each point is compared
    with; ``burn_in`` points before surprises feed that peak; ``surprise_floor``
    the smallest reference surprise (a robust z of 3).
    """

    def __init__(
        self,
        warmup: int = 64,
        local_k: int = 3,
        scale_size: int = 1000,
        seasons: int = 3,
        half_life: float = 1000.0,
        burn_in: int = 128,
        surprise_floor: float = 3.0,
    ) -> None:
        self.warmup = warmup
        self.seasons = seasons
        self.burn_in = burn_in
        self.surprise_floor = surprise_floor
        self._decay = 0.5 ** (1.0 / max(half_life, 1.0))
        self._peak = 0.0  # decaying maximum of past surprises
        self._n = 0
        self._recent: deque[float] = deque(maxlen=max(local_k, 1))
        self._prev_ts: float | None = None
        self._steps: deque[float] = deque(maxlen=128)
        self._step = 0.0
        self._period = 0  # slots per day, 0 = no daily seasonality usable
        self._slots: dict[int, float] = {}
        self._slot_keys: deque[int] = deque()
        self._scale_local = _Scale(scale_size)
        self._scale_season = _Scale(scale_size)
        self._err_local = math.nan
        self._err_season = math.nan
        self._cache: tuple[float, float, tuple] | None = None

    # -- forecasts ---------------------------------------------------------------
    def _seasonal_forecast(self, timestamp: float) -> float:
        if not self._period:
            return math.nan
        key = round(timestamp / self._step)
        past = []
        for k in range(1, self.seasons + 1):
            base = key - k * self._period
            for probe in (base, base - 1, base + 1):
                if probe in self._slots:
                    past.append(self._slots[probe])
                    break
        return _median(past) if len(past) >= 2 else math.nan

    def _features(self, timestamp: float, value: float) -> tuple[float, float, float]:
        """(local residual, seasonal residual, surprise) of a point, without learning."""
        with np.errstate(all="ignore"):
            r_l = value - _median(self._recent) if self._recent else 0.0
            r_s = value - self._seasonal_forecast(timestamp)
        z = self._z(r_l, self._scale_local)
        seasonal_ready = not math.isnan(r_s) and self._scale_season.ready(self.warmup)
        if seasonal_ready and self._err_season < self._err_local:
            z = self._z(r_s, self._scale_season)
        return r_l, r_s, abs(z)

    @staticmethod
    def _z(residual: float, scale: _Scale) -> float:
        spread = scale.value
        if math.isnan(residual) or math.isnan(spread):
            return 0.0
        if spread <= 0.0:
            return 0.0 if residual == 0.0 else math.copysign(1e6, residual)
        z = residual / spread
        return max(-1e6, min(1e6, z)) if not math.isnan(z) else 0.0

    def _computed(self, timestamp: float, value: float) -> tuple[float, float, float]:
        if self._cache is not None and self._cache[:2] == (timestamp, value):
            return self._cache[2]
        feats = self._features(timestamp, value)
        self._cache = (timestamp, value, feats)
        return feats

    # -- interface ---------------------------------------------------------------
    def score_one(self, timestamp: float, value: float) -> float:
        if not (math.isfinite(timestamp) and math.isfinite(value)):
            return NEUTRAL_SCORE
        if self._n < self.warmup or not self._scale_local.ready(self.warmup // 2):
            return NEUTRAL_SCORE
        surprise = self._computed(timestamp, value)[2]
        rel = surprise / max(self.surprise_floor, self._peak)
        if not math.isfinite(rel):
            return NEUTRAL_SCORE
        rel4 = min(rel, 1e6) ** 4  # log-logistic CDF: 0.5 at the reference surprise
        return float(rel4 / (rel4 + 1.0))

    def learn_one(self, timestamp: float, value: float) -> None:
        if not (math.isfinite(timestamp) and math.isfinite(value)):
            return
        r_l, r_s, surprise = self._computed(timestamp, value)
        self._cache = None
        self._learn_time(timestamp, value)
        if self._recent and math.isfinite(r_l):
            self._scale_local.add(r_l)
            self._err_local = _ewma(self._err_local, abs(r_l))
        if math.isfinite(r_s):
            self._scale_season.add(r_s)
            self._err_season = _ewma(self._err_season, abs(r_s))
        self._recent.append(value)
        if self._n >= self.burn_in and math.isfinite(surprise):
            self._peak = max(surprise, self._peak * self._decay)
        self._n += 1

    def _learn_time(self, timestamp: float, value: float) -> None:
        if self._prev_ts is not None and timestamp > self._prev_ts:
            self._steps.append(timestamp - self._prev_ts)
        self._prev_ts = timestamp if self._prev_ts is None else max(self._prev_ts, timestamp)
        if not self._step and len(self._steps) >= 32:
            self._step = _median(self._steps)
            per_day = DAY / self._step
            if 12 <= per_day <= 2880 and abs(per_day - round(per_day)) < 1e-6:
                self._period = round(per_day)
        if not self._step:
            return
        key = round(timestamp / self._step)
        if key not in self._slots:
            self._slot_keys.append(key)
        self._slots[key] = value
        keep = (self.seasons + 1) * max(self._period, 1) + 16
        while len(self._slot_keys) > keep:
            self._slots.pop(self._slot_keys.popleft(), None)


def combine_ratios(r_spike: float, r_level: float, p: float) -> float:
    """Power mean ``(r_spike^p + r_level^p)^(1/p)`` of two ratios (p <= 0 or inf: max).

    Evidence from the two features adds up: a point that is mildly surprising as
    a spike *and* as a level change outranks one that is mildly surprising on one
    feature only, while one strong feature alone still dominates.  With p = 4,
    the exponent of the score's log-logistic CDF, the odds ``r^4`` of the two
    features add (two equal ratios count 2^(1/4) = 1.19 times one of them).
    Negative ratios count as 0; NaN propagates (the caller scores it neutral).
    """
    if math.isnan(r_spike) or math.isnan(r_level):
        return math.nan
    a, b = min(max(float(r_spike), 0.0), 1e6), min(max(float(r_level), 0.0), 1e6)
    if math.isinf(p) or p <= 0.0:
        return max(a, b)
    return (a**p + b**p) ** (1.0 / p)


def _ewma(previous: float, x: float, alpha: float = 1.0 / 256) -> float:
    return x if math.isnan(previous) else previous + alpha * (x - previous)


class SpikeLevelDetector(RobustSeasonalDetector):
    """Spike and level-shift surprise, each relative to its own recent peak.

    See the module docstring.  Parameters beyond ``RobustSeasonalDetector``'s:
    ``level_recent`` values averaged, ``level_past`` values whose median is the
    reference level, ``level_floor`` the smallest reference level surprise,
    ``combine_p`` the power mean of the two ratios (4: their odds add; 0 or inf:
    the larger ratio, the earlier behaviour), ``repeat_window`` points within
    which a score that does not beat an earlier one is multiplied by
    ``repeat_damping`` (0 disables).
    """

    def __init__(
        self,
        warmup: int = 64,
        local_k: int = 5,
        scale_size: int = 1000,
        seasons: int = 3,
        half_life: float = 1000.0,
        burn_in: int = 300,
        surprise_floor: float = 3.0,
        level_recent: int = 6,
        level_past: int = 120,
        level_floor: float = 3.0,
        combine_p: float = 4.0,
        repeat_window: int = 60,
        repeat_damping: float = 0.5,
    ) -> None:
        super().__init__(
            warmup=warmup,
            local_k=local_k,
            scale_size=scale_size,
            seasons=seasons,
            half_life=half_life,
            burn_in=burn_in,
            surprise_floor=surprise_floor,
        )
        self.level_recent = max(int(level_recent), 1)
        self.level_past = max(int(level_past), 2)
        self.level_floor = level_floor
        self._values: deque[float] = deque(maxlen=self.level_recent + self.level_past)
        self._level_scale = _Scale(scale_size)
        self._season_res: deque[float] = deque(maxlen=max(self.level_recent - 1, 1))
        self._season_scale = _Scale(scale_size)
        self._spike_peak = 0.0  # decaying peak of log1p(spike surprise)
        self._level_peak = 0.0  # decaying peak of log1p(level surprise)
        self._level_cache: tuple[float, float, float] | None = None
        self.combine_p = float(combine_p)
        self._repeats = RepeatSuppressor(repeat_window, repeat_damping)

    # -- level feature -------------------------------------------------------------
    def _level_stat(self, timestamp: float, value: float) -> float:
        """Recent mean minus past median (NaN while the window is filling)."""
        if self._level_cache is not None and self._level_cache[:2] == (timestamp, value):
            return self._level_cache[2]
        stat = math.nan
        if len(self._values) >= self.level_recent - 1 + self.level_past // 2:
            arr = np.fromiter(self._values, dtype=float, count=len(self._values))
            split = len(arr) - (self.level_recent - 1)
            with np.errstate(all="ignore"):
                recent = (float(arr[split:].sum()) + value) / self.level_recent
                stat = recent - float(np.median(arr[:split]))
        self._level_cache = (timestamp, value, stat)
        return stat

    def _season_stat(self, timestamp: float, value: float) -> float:
        """Mean seasonal residual of the last ``level_recent`` points (NaN if unknown)."""
        r_s = self._computed(timestamp, value)[1]
        if not math.isfinite(r_s) or len(self._season_res) < self.level_recent - 1:
            return math.nan
        recent = list(self._season_res)[-(self.level_recent - 1) :] if self.level_recent > 1 else []
        return (sum(recent) + r_s) / self.level_recent

    def _level_surprise(self, timestamp: float, value: float) -> float:
        stat = self._level_stat(timestamp, value)
        if math.isnan(stat) or not self._level_scale.ready(100):
            return 0.0
        z = abs(self._z(stat, self._level_scale))
        if self._period and self._err_season < self._err_local and self._season_scale.ready(100):
            # a shift the same time on previous days predicts is not a level change
            s_stat = self._season_stat(timestamp, value)
            if math.isfinite(s_stat):
                z = min(z, abs(self._z(s_stat, self._season_scale)))
        return z

    # -- interface -------------------------------------------------------------------
    def _ratios(self, timestamp: float, value: float) -> tuple[float, float, float, float]:
        spike = self._computed(timestamp, value)[2]
        level = self._level_surprise(timestamp, value)
        f_spike = math.log1p(min(spike, 1e6))
        f_level = math.log1p(min(level, 1e6))
        r_spike = f_spike / max(math.log1p(self.surprise_floor), self._spike_peak)
        r_level = f_level / max(math.log1p(self.level_floor), self._level_peak)
        return r_spike, r_level, f_spike, f_level

    def _raw_score(self, timestamp: float, value: float) -> float:
        """The score before repeat damping (NEUTRAL_SCORE while warming up)."""
        if not (math.isfinite(timestamp) and math.isfinite(value)):
            return NEUTRAL_SCORE
        if self._n < self.warmup or not self._scale_local.ready(self.warmup // 2):
            return NEUTRAL_SCORE
        r_spike, r_level = self._ratios(timestamp, value)[:2]
        rel = combine_ratios(r_spike, r_level, self.combine_p)
        if not math.isfinite(rel):
            return NEUTRAL_SCORE
        rel4 = min(rel, 1e6) ** 4
        return float(rel4 / (rel4 + 1.0))

    def score_one(self, timestamp: float, value: float) -> float:
        return self._repeats.damped(self._raw_score(timestamp, value))

    def learn_one(self, timestamp: float, value: float) -> None:
        if not (math.isfinite(timestamp) and math.isfinite(value)):
            return
        self._repeats.push(self._raw_score(timestamp, value))
        stat = self._level_stat(timestamp, value)
        s_stat = self._season_stat(timestamp, value)
        r_s = self._computed(timestamp, value)[1]
        _, _, f_spike, f_level = self._ratios(timestamp, value)
        super().learn_one(timestamp, value)  # advances self._n
        self._level_cache = None
        self._values.append(value)
        if math.isfinite(stat):
            self._level_scale.add(stat)
        if math.isfinite(r_s):
            self._season_res.append(r_s)
        if math.isfinite(s_stat):
            self._season_scale.add(s_stat)
        if self._n > self.burn_in:
            if math.isfinite(f_spike):
                self._spike_peak = max(f_spike, self._spike_peak * self._decay)
            if math.isfinite(f_level):
                self._level_peak = max(f_level, self._level_peak * self._decay)
