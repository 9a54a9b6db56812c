"""``SpikeLevel``: the default streaming detector, vectorised across metrics.

The analyzer judges every arriving point of every metric with it, and
``skyline nab run`` scores exactly the same code: one point per metric per
``step``, score before learn, state in one fixed-size float64 row per metric
(``skyline.analysis.algorithms.state``), so M metrics advance together in numpy and a
state saved to Redis and restored continues bit for bit.

Per point, two surprises, each a robust z-score:

* *spike*: the value against a forecast, over a long-memory robust spread of that
  forecast's residuals (``BlockSpread``: a MAD over ``scale_block *
  scale_blocks`` residuals kept as a ring of block medians).  The forecast is the
  median of the last ``local_k`` values, or, once it has been the more accurate
  one (an EWMA of absolute residuals, rate ``err_alpha``), the daily-seasonal
  forecast (``DailyProfile``: the median of the same time-of-day bin's mean on
  the previous ``season_days`` days, the day cut into ``season_slots`` bins);
* *level*: the mean of the last ``level_recent`` values (this one included) minus
  the median of the ``level_past`` values before them, over the same kind of
  spread of that statistic's own history; it sees shifts and ramps that the local
  median absorbs within a few points.  While the seasonal forecast is trusted,
  the level surprise is the smaller of that z and the z of the mean of the last
  ``level_recent`` seasonal residuals, so a rise that recurs every day at that
  time is not a level change.

Each surprise is compared on a ``log1p`` scale with a reference, giving ratios r:
the larger of ``log1p(floor)``, its own decaying peak (half-life ``half_life``
expected points, fed only after ``burn_in`` points) and its *recurring* level (the day cut
into ``recur_slots`` bins, the largest surprise within ``recur_reach`` bins of this
time of day on each of the previous ``recur_days`` days, the smallest of those:
a surprise as large as one seen at about this time on every recent day is no
news; e.g. a daily cron spike that jitters by a few points).  The raw score is
the log-logistic CDF of the summed odds ``o = w r_spike^4 + r_level^4``:
``o / (1 + o)``, with ``w = spike_weight`` (0.8): a one-point excursion is weaker
evidence than a shift of the mean of the last ``level_recent`` values by as many
times its own reference (routine bursts are mostly spikes).  For a *new
extreme*, a value below the lowest or above the highest the metric has shown, or a
mean of the last ``level_recent`` values below or above every such mean before
(counted once ``burn_in`` points have been learned), the peaks and the recurring
level are lowered by ``record_boost ** (1/4)`` before the floor applies, so its
odds count up to ``record_boost`` times more: a surprise that also takes the metric,
or its recent level, where it has never been is more likely an anomaly than one
inside the range it has already visited.  The
floor is not lowered, so on plain noise, whose surprises stay below it, a new
extreme scores as any point.  Last, one alert per event: a raw score not above the
largest raw score of the previous ``repeat_window`` points is multiplied by
``repeat_damping``.  Those scores are kept as the maxima of blocks of
``repeat_block`` points (the last ``repeat_window // repeat_block`` full blocks and
the open one), so "the previous 60 points" is the previous 60 to 89: 4 floats
instead of 60.

The peaks' memory is counted in *expected* points: the metric's typical interval
is the median of its last ``gap_window`` intervals, and a point that arrives k
typical intervals after the previous one decays the peaks k times (at least
once).  A metric that was silent for a day does not compare its next points
with a peak it saw just before the gap as if no time had passed; a regular
metric decays exactly once per point, as in version 3.

The time-of-day bins of the seasonal profile and of the recurring peaks are kept
in rings of ``days * slots`` cells (``DailyBins``), so the state row stays
below 1,000 floats: 866 with the defaults.  Version 5 (the block maxima, and a
typical interval over 7 intervals instead of 15) took it from 948, so that the
analyzer's packed state fits jemalloc's 7 KB size class in Redis (up to 7,162
bytes: ``MEMORY USAGE`` 7,256 bytes on Redis 7, where 7,656 bytes took 8,280;
``tests/unit/test_vector_stream.py`` keeps it there).  Version 6 added the values'
range (2 floats) and kept repeat damping's scores in blocks of 30 instead of 20 (one
float fewer); version 7 adds the means' range (2 floats) and takes the typical
interval over 5 intervals instead of 7: 7,160 bytes with the counter wrapper's 6
floats.  Version 8 takes the level over the last 8 values against the median of the 96
before them (was 6 and 120) and raises ``record_boost`` from 2 to 2.5: 7,000 bytes.
Version 9 weighs the spike's odds by ``spike_weight`` 0.8 (was 1); the state is
version 8's.

While warming up (fewer than ``warmup`` points learned) the score is
``NEUTRAL_SCORE``.  A point with a non-finite timestamp or value, or a timestamp
not after the last one learned, is not judged: score NaN, state unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from skyline.analysis.algorithms.spike_level_features import BlockSpread, DailyBins
from skyline.analysis.algorithms.state import (
    StateLayout,
    nan_count_rows,
    nan_median_count_rows,
    nan_median_rows,
    shift_in,
)
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE

BIG_Z = 1e6


@dataclass(frozen=True)
class SpikeLevelParams:
    """One parameter set for every metric; nothing is tuned per series."""

    warmup: int = 64
    local_k: int = 5
    scale_block: int = 32
    scale_blocks: int = 32
    level_recent: int = 8
    level_past: int = 96
    level_ready: int = 3  # blocks of level statistics before the level feature scores
    season_slots: int = 96  # 0: no seasonal forecast
    season_days: int = 3
    err_alpha: float = 1.0 / 256
    half_life: float = 1000.0
    burn_in: int = 400
    floor: float = 4.0
    repeat_window: int = 60
    repeat_damping: float = 0.5
    repeat_block: int = 30  # the previous scores kept as maxima of blocks of this many
    recur_slots: int = 12  # 0: no daily recurring-surprise reference
    recur_days: int = 2
    recur_reach: int = 1
    season_level_gate: bool = True
    gap_window: int = 5  # intervals for the typical one; 0: the peaks decay once per point
    record_boost: float = 2.5  # up to this odds factor at a new extreme; 1: off
    spike_weight: float = 0.8  # the spike surprise's odds count this much of the level's

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


class SpikeLevel:
    """The vectorised detector (see the module docstring)."""

    name = "spike_level"
    version = 9

    def __init__(self, params: SpikeLevelParams | None = None) -> None:
        p = params or SpikeLevelParams()
        self.params = p
        self.recent_n = max(p.local_k, p.level_recent - 1, 1)
        self.repeat_block = max(1, min(p.repeat_block, p.repeat_window))
        self.seasonal = p.season_slots > 0
        b, nb = p.scale_block, p.scale_blocks
        names, ready = ["spike", "level"], [1, p.level_ready]
        cols: list[tuple[str, int]] = [
            ("n", 1), ("last_ts", 1), ("spike_peak", 1), ("level_peak", 1),
            ("recent", self.recent_n), ("past", p.level_past),
            ("scores", max(p.repeat_window // self.repeat_block, 1)),
        ]  # fmt: skip
        if self.repeat_block > 1:
            cols.append(("score_open", 2))  # the open block's largest score, its count
        if self.seasonal:
            self.profile = DailyBins("season", p.season_slots, p.season_days, 1, "mean")
            names.append("season")
            ready.append(1)
            if p.season_level_gate:
                names.append("slevel")
                ready.append(p.level_ready)
            cols += [("err", 2), ("season_res", max(p.level_recent - 1, 1))]
            cols += list(self.profile.fields())
        self.spreads = BlockSpread("res", tuple(names), b, nb, tuple(ready))
        cols += list(self.spreads.fields())
        self.recur = p.recur_slots > 0
        if self.recur:
            self.peaks = DailyBins("recur", p.recur_slots, p.recur_days, 2, "max")
            cols += list(self.peaks.fields())
        if p.gap_window > 0:
            cols.append(("gaps", p.gap_window))
        self.records = p.record_boost != 1.0
        if self.records:
            cols.append(("range", 4))  # lowest and highest value, and mean of level_recent
        self.layout = StateLayout(self.name, self.version * 1000 + _params_crc(p), tuple(cols))
        self._decay = 0.5 ** (1.0 / max(p.half_life, 1.0))

    def new_state(self, m: int) -> np.ndarray:
        """Fresh state rows for ``m`` metrics."""
        lay = self.layout
        state = np.full((m, lay.width), np.nan)
        for name in ("n", "spike_peak", "level_peak"):
            lay.view(state, name)[:] = 0.0
        lay.view(state, "last_ts")[:] = -np.inf
        self.spreads.init(lay, state)
        if self.seasonal:
            self.profile.init(lay, state)
        if self.recur:
            self.peaks.init(lay, state)
        if self.records:
            lay.view(state, "range")[:] = (np.inf, -np.inf, np.inf, -np.inf)
        return state

    # -- features -------------------------------------------------------------------
    @staticmethod
    def _z(residual: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """|residual| / spread, capped; 0 where either is unknown, BIG_Z over a zero
        spread unless the residual is zero too."""
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.abs(residual) / spread
        z = np.where(spread == 0.0, np.where(residual == 0.0, 0.0, BIG_Z), z)
        z = np.where(np.isnan(z), 0.0, z)
        return np.minimum(z, BIG_Z)

    def _spread(self, state: np.ndarray, name: str) -> np.ndarray:
        return self.spreads.spread(self.layout, state, name)

    def _level(self, state: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean of the last ``level_recent`` values (NaN until there are as many),
        and that mean minus the median of the ``level_past`` before them (NaN while
        the past is less than half full)."""
        p, lay = self.params, self.layout
        recent, past = _win(lay, state, "recent"), _win(lay, state, "past")
        k = p.level_recent - 1
        last = recent[:, recent.shape[1] - k :] if k else recent[:, :0]
        median, count = nan_median_count_rows(past)
        with np.errstate(invalid="ignore"):
            mean = (last.sum(axis=1) + v) / p.level_recent
        return mean, np.where(count >= p.level_past // 2, mean - median, np.nan)

    def _features(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> dict:
        p, lay = self.params, self.layout
        recent = _win(lay, state, "recent")
        local = nan_median_rows(recent[:, -p.local_k :]) if p.local_k else np.zeros(len(v))
        mean, level = self._level(state, v)
        f = {"r_spike": v - local, "level": level, "mean": mean}
        z_spike = self._z(f["r_spike"], self._spread(state, "spike"))
        z_level = self._z(f["level"], self._spread(state, "level"))
        if self.seasonal:
            z_spike, z_level = self._seasonal(state, t, v, f, z_spike, z_level)
        f["f_spike"], f["f_level"] = np.log1p(z_spike), np.log1p(z_level)
        if self.recur:
            f["recur_key"] = self.peaks.key(t)
            f["recur"] = self._recurring(state, f["recur_key"])
        if self.records:  # the value, or the mean of the last few, where it has never been
            span, n = _win(lay, state, "range"), lay.view(state, "n")
            beyond = (v < span[:, 0]) | (v > span[:, 1])
            beyond |= (mean < span[:, 2]) | (mean > span[:, 3])
            f["record"] = beyond & (n >= p.burn_in)
        return f

    def _forecast(self, state: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Median of this time-of-day bin's means on the previous days (NaN unless
        at least two are known)."""
        prof = self.profile
        back = np.arange(1, prof.days + 1) * prof.slots
        past = prof.lookup(self.layout, state, key[:, None] - back)[:, :, 0]
        return np.where(nan_count_rows(past) >= 2, nan_median_rows(past), np.nan)

    def _recurring(self, state: np.ndarray, key: np.ndarray) -> np.ndarray:
        """(M, 2): per surprise, the smallest over the previous days of the largest
        surprise within ``recur_reach`` bins of this time of day (NaN unless every
        one of those days is known)."""
        pk, reach = self.peaks, self.params.recur_reach
        back = np.arange(1, pk.days + 1)[:, None] * pk.slots - np.arange(-reach, reach + 1)
        q = key[:, None] - back.ravel()
        got = pk.lookup(self.layout, state, q).reshape(len(key), pk.days, 2 * reach + 1, pk.ch)
        with np.errstate(invalid="ignore"):
            day_max = np.fmax.reduce(got, axis=2)  # NaN only when no bin of that day is held
        return day_max.min(axis=1)  # NaN propagates: every day must be known

    def _seasonal(self, state: np.ndarray, t: np.ndarray, v: np.ndarray, f: dict,
                  z_spike: np.ndarray, z_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Spike and level z where the seasonal forecast is trusted; records the
        seasonal residual and level statistic in ``f``."""
        p, lay = self.params, self.layout
        f["season_key"] = self.profile.key(t)
        r = v - self._forecast(state, f["season_key"])
        last = _win(lay, state, "season_res")[:, -(p.level_recent - 1) :]
        with np.errstate(invalid="ignore"):
            s_level = (last.sum(axis=1) + r) / p.level_recent if p.level_recent > 1 else r
        f["r_season"], f["s_level"] = r, s_level
        err = lay.view(state, "err")
        trust = err[:, 1] < err[:, 0]  # NaN compares False
        s_spread = self._spread(state, "season")
        use = trust & np.isfinite(r) & np.isfinite(s_spread)
        z_spike = np.where(use, self._z(r, s_spread), z_spike)
        if "slevel" not in self.spreads.names:
            return z_spike, z_level
        sl_spread = self._spread(state, "slevel")
        gate = trust & np.isfinite(s_level) & np.isfinite(sl_spread)
        z_level = np.where(gate, np.minimum(z_level, self._z(s_level, sl_spread)), z_level)
        return z_spike, z_level

    def _raw_score(self, state: np.ndarray, f: dict[str, np.ndarray]) -> np.ndarray:
        lay, p = self.layout, self.params
        r_s, r_l = self._ratios(state, f)
        odds = self._odds(np.minimum(r_s, BIG_Z), np.minimum(r_l, BIG_Z), f)
        raw = odds / (1.0 + odds)
        warm = lay.view(state, "n") >= p.warmup
        return np.where(warm, raw, NEUTRAL_SCORE)

    def _ratios(self, state: np.ndarray, f: dict) -> tuple[np.ndarray, np.ndarray]:
        """Each surprise over its reference: the floor, the decaying peak, the recurring
        level, those two lowered at a new extreme."""
        lay, p = self.layout, self.params
        ref = math.log1p(p.floor)
        spike_ref = lay.view(state, "spike_peak")
        level_ref = lay.view(state, "level_peak")
        if self.recur:
            spike_ref = np.fmax(spike_ref, f["recur"][:, 0])
            level_ref = np.fmax(level_ref, f["recur"][:, 1])
        if self.records:  # a new extreme: a lower bar than recent surprises, not the floor
            lower = np.where(f["record"], p.record_boost**-0.25, 1.0)
            spike_ref, level_ref = spike_ref * lower, level_ref * lower
        r_spike = f["f_spike"] / np.maximum(ref, spike_ref)
        return r_spike, f["f_level"] / np.maximum(ref, level_ref)

    def _odds(self, r_spike: np.ndarray, r_level: np.ndarray, f: dict) -> np.ndarray:
        """The summed odds of the two (capped) ratios."""
        return self.params.spike_weight * r_spike**4 + r_level**4

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
        tt = np.where(ok, t, 0.0)
        # values near the float limits overflow to inf in sums and differences; every
        # feature maps non-finite intermediates to a defined score, so no warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            f = self._features(state, tt, vv)
            raw = self._raw_score(state, f)
            scores_win = _win(lay, state, "scores")
            if p.repeat_window > 0:
                prev = np.nanmax(np.where(np.isnan(scores_win), -np.inf, scores_win), axis=1)
                if self.repeat_block > 1:  # and the open block's largest (NaN: none yet)
                    prev = np.fmax(prev, lay.view(state, "score_open")[:, 0])
                repeat = (raw > 0.0) & (prev >= raw)
                score = np.where(repeat, raw * p.repeat_damping, raw)
            else:
                score = raw
            self._learn(state, ok, vv, tt, f, raw)
        return np.where(ok, score, np.nan)

    def _learn(self, state: np.ndarray, ok: np.ndarray, v: np.ndarray, t: np.ndarray,
               f: dict[str, np.ndarray], raw: np.ndarray) -> None:  # fmt: skip
        lay, p = self.layout, self.params
        n = lay.view(state, "n")
        recent = _win(lay, state, "recent")
        self._learn_score(state, ok, raw)
        has_prev = ok & (n > 0)
        xs, masks = [f["r_spike"], f["level"]], [has_prev, ok & np.isfinite(f["level"])]
        if self.seasonal:
            self._learn_seasonal(state, ok, has_prev, t, v, f)
            xs.append(f["r_season"])
            masks.append(ok & np.isfinite(f["r_season"]))
            if "slevel" in self.spreads.names:
                xs.append(f["s_level"])
                masks.append(ok & np.isfinite(f["s_level"]))
        self.spreads.add(lay, state, np.stack(xs, axis=1), np.stack(masks, axis=1))
        shift_in(_win(lay, state, "past"), recent[:, 0], ok & ~np.isnan(recent[:, 0]))
        shift_in(recent, v, ok)
        feed = ok & (n >= p.burn_in)
        decay = self._peak_decay(state, ok, t)
        for feat, peak_name in (("f_spike", "spike_peak"), ("f_level", "level_peak")):
            peak = lay.view(state, peak_name)
            peak[:] = np.where(feed, np.maximum(f[feat], peak * decay), peak)
        if self.recur:
            x = np.stack([f["f_spike"], f["f_level"]], axis=1)
            self.peaks.learn(lay, state, f["recur_key"], x, ok & (n >= p.warmup))
        if self.records:
            span, mean = lay.view(state, "range"), np.where(ok, f["mean"], np.nan)
            span[:, 0] = np.where(ok, np.fmin(span[:, 0], v), span[:, 0])
            span[:, 1] = np.where(ok, np.fmax(span[:, 1], v), span[:, 1])
            span[:, 2] = np.fmin(span[:, 2], mean)  # NaN (not ok, or too few values): kept
            span[:, 3] = np.fmax(span[:, 3], mean)
        n[:] = np.where(ok, n + 1, n)
        last = lay.view(state, "last_ts")
        last[:] = np.where(ok, t, last)

    def _learn_score(self, state: np.ndarray, ok: np.ndarray, raw: np.ndarray) -> None:
        """Remember the raw score for repeat damping: in the window itself, or with
        ``repeat_block`` in the open block, whose maximum joins the window of block
        maxima once the block is full."""
        lay, b = self.layout, self.repeat_block
        if b <= 1:
            shift_in(_win(lay, state, "scores"), raw, ok)
            return
        open_ = _win(lay, state, "score_open")
        open_[:, 0] = np.where(ok, np.fmax(open_[:, 0], raw), open_[:, 0])
        open_[:, 1] = np.where(ok, np.nan_to_num(open_[:, 1]) + 1.0, open_[:, 1])
        full = ok & (open_[:, 1] >= b)
        shift_in(_win(lay, state, "scores"), open_[:, 0], full)
        open_[full] = np.nan

    def _peak_decay(self, state: np.ndarray, ok: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Each row's peak decay for this point: ``decay ** k``, k the typical
        intervals elapsed (``_intervals``) but at least 1; ``decay`` without
        ``gap_window``."""
        if self.params.gap_window <= 0:
            return np.full(len(t), self._decay)
        return self._decay ** np.maximum(self._intervals(state, ok, t), 1.0)

    def _intervals(self, state: np.ndarray, ok: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Typical intervals since each row's last point (1 while the typical
        interval, the median of the last ``gap_window``, is unknown); learns the
        interval of the judged rows."""
        gaps = _win(self.layout, state, "gaps")
        dt = t - self.layout.view(state, "last_ts")  # inf after no point
        typical = nan_median_rows(gaps)
        known = ok & np.isfinite(dt)
        k = np.where(known & (typical > 0.0), dt / typical, 1.0)  # NaN typical compares False
        shift_in(gaps, dt, known)
        return k

    def _learn_seasonal(self, state: np.ndarray, ok: np.ndarray, has_prev: np.ndarray,
                        t: np.ndarray, v: np.ndarray, f: dict) -> None:  # fmt: skip
        lay, a = self.layout, self.params.err_alpha
        r = f["r_season"]
        has_r = ok & np.isfinite(r)
        err = lay.view(state, "err")
        for col, x, mask in ((0, f["r_spike"], has_prev), (1, r, has_r)):
            e = err[:, col]
            upd = np.where(np.isnan(e), np.abs(x), e + a * (np.abs(x) - e))
            err[:, col] = np.where(mask, upd, e)
        shift_in(_win(lay, state, "season_res"), r, has_r)
        self.profile.learn(lay, state, f["season_key"], v[:, None], ok)


def _params_crc(p: SpikeLevelParams) -> int:
    """A small number that changes with the parameters, so a state learned under
    other parameters is rebuilt rather than reused."""
    import zlib

    return zlib.crc32(p.describe().encode()) % 1000


def _win(lay: StateLayout, state: np.ndarray, name: str) -> np.ndarray:
    """A window field as a 2-D view, even when it is one column wide."""
    return state[:, lay.slice(name)]
