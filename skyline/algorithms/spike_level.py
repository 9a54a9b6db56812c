"""``SpikeLevel``: the default streaming detector, vectorised across metrics.

The analyzer judges every arriving point of every metric with it, and
``skyline nab run`` scores exactly the same code: one point per metric per
``step``, score before learn, state in one fixed-size float64 row per metric
(``skyline.algorithms.state``), so M metrics advance together in numpy and a
state saved to Redis and restored continues bit for bit.

Per point, two surprises, each a robust z-score:

* *spike*: the value against the median of the last ``local_k`` values, over the
  spread of the last ``scale_size`` such residuals (``1.4826 * median |r|``,
  floored at half their mean);
* *level*: the mean of the last ``level_recent`` values (this one included) minus
  the median of the ``level_past`` values before them, over the same kind of
  spread of that statistic's own history; it sees shifts and ramps that the local
  median absorbs within a few points.

Each surprise is compared on a ``log1p`` scale with its own decaying peak
(half-life ``half_life`` points, floored at ``log1p(floor)``, fed only after
``burn_in`` points), giving ratios r; the raw score is the log-logistic CDF of the
summed odds ``o = r_spike^4 + r_level^4``: ``o / (1 + o)``.  Last, one alert per
event: a raw score not above the largest raw score of the previous
``repeat_window`` points is multiplied by ``repeat_damping``.

While warming up (fewer than ``warmup`` points learned) the score is
``NEUTRAL_SCORE``.  A point with a non-finite timestamp or value, or a timestamp
not after the last one learned, is not judged: score NaN, state unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from skyline.algorithms.state import (
    StateLayout,
    nan_count_rows,
    nan_median_rows,
    shift_in,
)
from skyline.algorithms.streaming import NEUTRAL_SCORE

BIG_Z = 1e6


@dataclass(frozen=True)
class SpikeLevelParams:
    """One parameter set for every metric; nothing is tuned per series."""

    warmup: int = 64
    local_k: int = 5
    scale_size: int = 128
    scale_ready: int = 32
    level_recent: int = 6
    level_past: int = 120
    level_ready: int = 100
    half_life: float = 1000.0
    burn_in: int = 300
    floor: float = 3.0
    repeat_window: int = 60
    repeat_damping: float = 0.5

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


class SpikeLevel:
    """The vectorised detector (see the module docstring)."""

    name = "spike_level"
    version = 2

    def __init__(self, params: SpikeLevelParams | None = None) -> None:
        p = params or SpikeLevelParams()
        self.params = p
        self.recent_n = max(p.local_k, p.level_recent - 1, 1)
        self.layout = StateLayout(
            self.name,
            self.version * 1000 + _params_crc(p),
            (
                ("n", 1),
                ("last_ts", 1),
                ("spike_peak", 1),
                ("level_peak", 1),
                ("recent", self.recent_n),
                ("past", p.level_past),
                ("spike_res", p.scale_size),
                ("level_res", p.scale_size),
                ("scores", max(p.repeat_window, 1)),
            ),
        )
        self._decay = 0.5 ** (1.0 / max(p.half_life, 1.0))

    def new_state(self, m: int) -> np.ndarray:
        """Fresh state rows for ``m`` metrics."""
        state = np.full((m, self.layout.width), np.nan)
        for name in ("n", "spike_peak", "level_peak"):
            self.layout.view(state, name)[:] = 0.0
        self.layout.view(state, "last_ts")[:] = -np.inf
        return state

    # -- features -------------------------------------------------------------------
    def _spread(self, residuals: np.ndarray) -> np.ndarray:
        """Robust spread of each row's residual window (NaN until ``scale_ready``)."""
        a = np.abs(residuals)
        cnt = nan_count_rows(a)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(a, axis=1) / cnt
            spread = np.maximum(1.4826 * nan_median_rows(a), 0.5 * mean)
        return np.where(cnt >= self.params.scale_ready, spread, np.nan)

    @staticmethod
    def _z(residual: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """|residual| / spread, capped; 0 where either is unknown, BIG_Z over a zero
        spread unless the residual is zero too."""
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.abs(residual) / spread
        z = np.where(spread == 0.0, np.where(residual == 0.0, 0.0, BIG_Z), z)
        z = np.where(np.isnan(z), 0.0, z)
        return np.minimum(z, BIG_Z)

    def _features(self, state: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
        p, lay = self.params, self.layout
        recent = lay.view(state, "recent")
        past = lay.view(state, "past")
        local = nan_median_rows(recent[:, -p.local_k :]) if p.local_k else np.zeros(len(v))
        r_spike = v - local
        z_spike = self._z(r_spike, self._spread(lay.view(state, "spike_res")))
        k = p.level_recent - 1
        last = recent[:, recent.shape[1] - k :] if k else recent[:, :0]
        with np.errstate(invalid="ignore"):
            mean_recent = (last.sum(axis=1) + v) / p.level_recent
            level = mean_recent - nan_median_rows(past)
        level_ok = nan_count_rows(past) >= p.level_past // 2
        level = np.where(level_ok, level, np.nan)
        level_res = lay.view(state, "level_res")
        level_ready = nan_count_rows(level_res) >= p.level_ready
        z_level = np.where(level_ready, self._z(level, self._spread(level_res)), 0.0)
        return {"r_spike": r_spike, "level": level, "f_spike": np.log1p(z_spike),
                "f_level": np.log1p(z_level)}  # fmt: skip

    def _raw_score(self, state: np.ndarray, f: dict[str, np.ndarray]) -> np.ndarray:
        lay, p = self.layout, self.params
        ref = math.log1p(p.floor)
        r_s = f["f_spike"] / np.maximum(ref, lay.view(state, "spike_peak"))
        r_l = f["f_level"] / np.maximum(ref, lay.view(state, "level_peak"))
        odds = np.minimum(r_s, BIG_Z) ** 4 + np.minimum(r_l, BIG_Z) ** 4
        raw = odds / (1.0 + odds)
        warm = lay.view(state, "n") >= p.warmup
        return np.where(warm, raw, NEUTRAL_SCORE)

    # -- one point per metric ---------------------------------------------------------
    def step(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Score each row's point, then learn it; ``state`` is updated in place.

        Returns the scores (NaN where the point was not judged: a non-finite
        timestamp or value, or a timestamp not after the row's last one).
        """
        lay, p = self.layout, self.params
        t = np.asarray(t, dtype=float)
        v = np.asarray(v, dtype=float)
        ok = np.isfinite(t) & np.isfinite(v) & (t > lay.view(state, "last_ts"))
        vv = np.where(ok, v, 0.0)
        f = self._features(state, vv)
        raw = self._raw_score(state, f)
        scores_win = lay.view(state, "scores")
        if p.repeat_window > 0:
            prev = np.nanmax(np.where(np.isnan(scores_win), -np.inf, scores_win), axis=1)
            repeat = (raw > 0.0) & (prev >= raw)
            score = np.where(repeat, raw * p.repeat_damping, raw)
        else:
            score = raw
        self._learn(state, ok, vv, t, f, raw)
        return np.where(ok, score, np.nan)

    def _learn(self, state: np.ndarray, ok: np.ndarray, v: np.ndarray, t: np.ndarray,
               f: dict[str, np.ndarray], raw: np.ndarray) -> None:  # fmt: skip
        lay, p = self.layout, self.params
        n = lay.view(state, "n")
        recent = lay.view(state, "recent")
        shift_in(lay.view(state, "scores"), raw, ok)
        has_prev = ok & (n > 0)
        shift_in(lay.view(state, "spike_res"), f["r_spike"], has_prev)
        shift_in(lay.view(state, "level_res"), f["level"], ok & np.isfinite(f["level"]))
        shift_in(lay.view(state, "past"), recent[:, 0], ok & ~np.isnan(recent[:, 0]))
        shift_in(recent, v, ok)
        feed = ok & (n >= p.burn_in)
        for feat, peak_name in (("f_spike", "spike_peak"), ("f_level", "level_peak")):
            peak = lay.view(state, peak_name)
            peak[:] = np.where(feed, np.maximum(f[feat], peak * self._decay), peak)
        n[:] = np.where(ok, n + 1, n)
        last = lay.view(state, "last_ts")
        last[:] = np.where(ok, t, last)


def _params_crc(p: SpikeLevelParams) -> int:
    """A small number that changes with the parameters, so a state learned under
    other parameters is rebuilt rather than reused."""
    import zlib

    return zlib.crc32(p.describe().encode()) % 1000
