"""``SpikeLevel`` against a slow, obviously correct twin.

``Twin`` is the same algorithm written point by point for one series with plain
Python (lists, deques, ``statistics.median``, a dict of closed time-of-day bins),
following the module docstring of ``skyline.analysis.algorithms.spike_level`` rather than
its numpy code.  The vectorised ``step`` (one series per state row, all rows in
lockstep) must give the same scores to ~1e-9.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import numpy as np
import pytest

from skyline.analysis.algorithms.spike_level import BIG_Z, SpikeLevel, SpikeLevelParams
from skyline.analysis.algorithms.stepping import score_points
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE

DAY = 86400.0
NAN = math.nan

SMALL = SpikeLevelParams(
    warmup=8, local_k=3, scale_block=4, scale_blocks=5, level_recent=3, level_past=10,
    level_ready=2, season_slots=24, season_days=2, half_life=50.0, burn_in=20, floor=3.0,
    repeat_window=7, repeat_block=3, recur_slots=6, recur_days=2, recur_reach=1, gap_window=3,
)  # fmt: skip
VARIANTS = [
    SpikeLevelParams(),
    SMALL,
    SpikeLevelParams(
        recur_slots=0, season_level_gate=False, repeat_window=0, record_boost=3.0, spike_weight=0.5
    ),
    SpikeLevelParams(
        season_slots=0,
        recur_reach=0,
        level_recent=1,
        gap_window=0,
        repeat_block=1,
        record_boost=1.0,
        spike_weight=1.0,
    ),
]


def median_or_nan(xs: list[float]) -> float:
    return statistics.median(xs) if xs else NAN


class Spread:
    """Block medians and means of |x|; spread = max(1.4826 median of medians,
    0.5 mean of means) once ``ready`` blocks are complete."""

    def __init__(self, block: int, blocks: int, ready: int) -> None:
        self.block, self.ready = block, max(ready, 1)
        self.buf: list[float] = []
        self.medians: deque[float] = deque(maxlen=blocks)
        self.means: deque[float] = deque(maxlen=blocks)
        self.value = NAN

    def add(self, x: float) -> None:
        self.buf.append(abs(x))
        if len(self.buf) < self.block:
            return
        self.medians.append(statistics.median(self.buf))
        self.means.append(sum(self.buf) / len(self.buf))
        self.buf = []
        if len(self.medians) >= self.ready:
            mean = sum(self.means) / len(self.means)
            self.value = max(1.4826 * statistics.median(self.medians), 0.5 * mean)


class Bins:
    """Closed time-of-day bins by key (day * slots + slot): mean or max of the
    points that fell in them; a bin is known while it is among the last
    ``days * slots`` keys up to the last closed one."""

    def __init__(self, slots: int, days: int, use_max: bool) -> None:
        self.slots, self.ring, self.use_max = slots, days * slots, use_max
        self.closed: dict[int, list[float]] = {}
        self.last = -math.inf
        self.key: int | None = None
        self.points: list[list[float]] = []

    def key_of(self, t: float) -> int:
        day = math.floor(t / DAY)
        slot = min(max(math.floor((t - day * DAY) * self.slots / DAY), 0), self.slots - 1)
        return day * self.slots + slot

    def get(self, q: int) -> list[float] | None:
        if not (self.last - self.ring < q <= self.last):
            return None
        return self.closed.get(q)

    def add(self, key: int, x: list[float]) -> None:
        if self.points and key != self.key:
            assert self.key is not None
            cols = list(zip(*self.points, strict=True))
            if self.use_max:
                self.closed[self.key] = [max(c) for c in cols]
            else:
                self.closed[self.key] = [sum(c) / len(c) for c in cols]
            self.last = self.key
            self.points = []
        self.key = key
        self.points.append(x)


def z_of(residual: float, spread: float) -> float:
    if math.isnan(residual) or math.isnan(spread):
        return 0.0
    if spread == 0.0:
        return 0.0 if residual == 0.0 else BIG_Z
    return min(abs(residual) / spread, BIG_Z)


class Twin:
    """One series, one point at a time (see the module docstring of spike_level)."""

    def __init__(self, p: SpikeLevelParams) -> None:
        self.p = p
        self.n = 0
        self.last_ts = -math.inf
        self.peaks = {"spike": 0.0, "level": 0.0}
        self.recent: deque[float] = deque(maxlen=max(p.local_k, p.level_recent - 1, 1))
        self.past: deque[float] = deque(maxlen=p.level_past)
        # repeat damping's memory: maxima of full blocks, and the open block's scores
        self.block = max(1, min(p.repeat_block, p.repeat_window))
        self.scores: deque[float] = deque(maxlen=max(p.repeat_window // self.block, 1))
        self.open_block: list[float] = []
        blk, nb = p.scale_block, p.scale_blocks
        self.spread = {"spike": Spread(blk, nb, 1), "level": Spread(blk, nb, p.level_ready),
                       "season": Spread(blk, nb, 1), "slevel": Spread(blk, nb, p.level_ready)}  # fmt: skip
        self.err_local = self.err_season = NAN
        self.season_res: list[float] = []
        self.profile = Bins(p.season_slots, p.season_days, use_max=False)
        self.daily_peaks = Bins(p.recur_slots, p.recur_days, use_max=True)
        self.decay = 0.5 ** (1.0 / max(p.half_life, 1.0))
        self.gaps: deque[float] = deque(maxlen=max(p.gap_window, 1))
        self.lowest, self.highest = math.inf, -math.inf  # of the values
        self.mean_range = [math.inf, -math.inf]  # of the means of level_recent values

    def forecast(self, t: float) -> float:
        key = self.profile.key_of(t)
        got = [
            self.profile.get(key - j * self.p.season_slots)
            for j in range(1, self.p.season_days + 1)
        ]
        vals = [g[0] for g in got if g is not None]
        return statistics.median(vals) if len(vals) >= 2 else NAN

    def recurring(self, t: float) -> list[float]:
        """Per surprise: min over previous days of the max over nearby bins."""
        p, bins = self.p, self.daily_peaks
        key = bins.key_of(t)
        out = [math.inf, math.inf]
        for j in range(1, p.recur_days + 1):
            near = [
                bins.get(key - j * p.recur_slots + d)
                for d in range(-p.recur_reach, p.recur_reach + 1)
            ]
            near = [g for g in near if g is not None]
            if not near:
                return [NAN, NAN]
            out = [min(out[c], max(g[c] for g in near)) for c in range(2)]
        return out

    def features(self, t: float, v: float) -> dict:
        p = self.p
        recent = list(self.recent)
        local = median_or_nan(recent[-p.local_k :])
        r_spike = v - local
        k = p.level_recent - 1
        mean = level = NAN
        if len(recent) >= k:
            mean = (sum(recent[len(recent) - k :]) + v) / p.level_recent
            if len(self.past) >= p.level_past // 2:
                level = mean - statistics.median(self.past)
        f = {"r_spike": r_spike, "level": level, "r_season": NAN, "s_level": NAN, "mean": mean}
        z_spike = z_of(r_spike, self.spread["spike"].value)
        z_level = z_of(level, self.spread["level"].value)
        if p.season_slots > 0:
            z_spike, z_level = self.seasonal(t, v, f, z_spike, z_level)
        f["f_spike"], f["f_level"] = math.log1p(z_spike), math.log1p(z_level)
        lo, hi = self.mean_range
        beyond = not self.lowest <= v <= self.highest or not (math.isnan(mean) or lo <= mean <= hi)
        f["record"] = self.n >= p.burn_in and beyond
        return f

    def seasonal(self, t: float, v: float, f: dict, z_spike: float, z_level: float) -> tuple:
        p = self.p
        r = v - self.forecast(t)
        k = p.level_recent - 1
        s_level = r
        if k:
            s_level = (
                (sum(self.season_res[-k:]) + r) / p.level_recent
                if len(self.season_res) >= k
                else NAN
            )
        f["r_season"], f["s_level"] = r, s_level
        trust = self.err_season < self.err_local
        spread = self.spread["season"].value
        if trust and not math.isnan(r) and not math.isnan(spread):
            z_spike = z_of(r, spread)
        spread = self.spread["slevel"].value
        if p.season_level_gate and trust and not math.isnan(s_level) and not math.isnan(spread):
            z_level = min(z_level, z_of(s_level, spread))
        return z_spike, z_level

    def raw(self, t: float, f: dict) -> float:
        p = self.p
        refs = [self.peaks["spike"], self.peaks["level"]]
        if p.recur_slots > 0:
            rec = self.recurring(t)
            refs = [r if math.isnan(x) else max(r, x) for r, x in zip(refs, rec, strict=True)]
        if f["record"]:  # below the recent surprises by boost^(1/4), never below the floor
            refs = [r / p.record_boost**0.25 for r in refs]
        refs = [max(math.log1p(p.floor), r) for r in refs]
        spike, level = min(f["f_spike"] / refs[0], BIG_Z), min(f["f_level"] / refs[1], BIG_Z)
        odds = p.spike_weight * spike**4 + level**4
        return odds / (1.0 + odds) if self.n >= p.warmup else NEUTRAL_SCORE

    def step(self, t: float, v: float) -> float:
        p = self.p
        if not (math.isfinite(t) and math.isfinite(v)) or t <= self.last_ts:
            return NAN
        f = self.features(t, v)
        raw = self.raw(t, f)
        score = raw
        prev = [*self.scores, *self.open_block]
        if p.repeat_window > 0 and prev and raw > 0.0 and max(prev) >= raw:
            score = raw * p.repeat_damping
        self.learn(t, v, f, raw)
        return score

    def learn(self, t: float, v: float, f: dict, raw: float) -> None:
        p = self.p
        self.open_block.append(raw)
        if len(self.open_block) == self.block:
            self.scores.append(max(self.open_block))
            self.open_block = []
        if self.n > 0:
            self.spread["spike"].add(f["r_spike"])
            self.err_local = ewma(self.err_local, abs(f["r_spike"]), p.err_alpha)
        if not math.isnan(f["level"]):
            self.spread["level"].add(f["level"])
        if p.season_slots > 0:
            if not math.isnan(f["r_season"]):
                self.spread["season"].add(f["r_season"])
                self.err_season = ewma(self.err_season, abs(f["r_season"]), p.err_alpha)
                self.season_res.append(f["r_season"])
            if not math.isnan(f["s_level"]):
                self.spread["slevel"].add(f["s_level"])
            self.profile.add(self.profile.key_of(t), [v])
        if len(self.recent) == self.recent.maxlen:
            self.past.append(self.recent[0])
        self.recent.append(v)
        decay = self.decay
        if p.gap_window > 0 and self.n > 0:
            # the peaks decay once per typical interval elapsed, at least once
            if self.gaps and statistics.median(self.gaps) > 0:
                decay = self.decay ** max((t - self.last_ts) / statistics.median(self.gaps), 1.0)
            self.gaps.append(t - self.last_ts)
        if self.n >= p.burn_in:
            for name in ("spike", "level"):
                self.peaks[name] = max(f[f"f_{name}"], self.peaks[name] * decay)
        if p.recur_slots > 0 and self.n >= p.warmup:
            self.daily_peaks.add(self.daily_peaks.key_of(t), [f["f_spike"], f["f_level"]])
        self.lowest, self.highest = min(self.lowest, v), max(self.highest, v)
        if not math.isnan(f["mean"]):
            self.mean_range = [
                min(self.mean_range[0], f["mean"]),
                max(self.mean_range[1], f["mean"]),
            ]
        self.n += 1
        self.last_ts = t


def ewma(previous: float, x: float, a: float) -> float:
    return x if math.isnan(previous) else previous + a * (x - previous)


# -- inputs ---------------------------------------------------------------------------
def seasonal_series(seed: int, n: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Jittered timestamps with gaps (a few hours, a whole day), a daily cycle, noise,
    spikes, a daily spike that jitters, and a level shift."""
    rng = np.random.default_rng(seed)
    gaps = np.where(rng.random(n) < 0.01, rng.integers(2, 40, n) * step, 0.0)
    gaps[n // 2 : n // 2 + 1] = DAY + 7 * step  # a whole day missing
    dt = step + rng.uniform(-0.2, 0.2, n) * step + gaps
    t = 1.4e9 + rng.uniform(0, DAY) + np.cumsum(dt)
    tod = (t % DAY) / DAY
    v = 10 + 3 * np.sin(2 * np.pi * tod) + rng.normal(0, 0.5, n)
    spikes = rng.random(n) < 0.01
    v[spikes] += rng.normal(0, 8, int(spikes.sum()))
    v[np.abs(tod - 0.3) < step / DAY] += 6.0  # about one point a day
    v[int(0.7 * n) :] += 4.0
    return t, v


def hand_picked() -> list[tuple[np.ndarray, np.ndarray]]:
    t = 1.5e9 + 300.0 * np.arange(900)
    const = (t, np.full(900, 5.0))
    shift = (t, np.where(np.arange(900) < 600, 1.0, 3.0) + 0.01 * np.sin(np.arange(900)))
    bad_v = np.sin(np.arange(900) / 7.0)
    bad_v[[50, 51, 300]] = np.nan
    bad_v[[120, 400]] = np.inf
    bad_v[401] = -np.inf
    bad_t = t.copy()
    bad_t[[200, 500]] = bad_t[[199, 499]]  # duplicate timestamps
    bad_t[600] = bad_t[590]  # goes back in time
    bad_t[700] = np.nan
    zeros = np.zeros(900)
    zeros[::97] = 1.0  # mostly zero: the spread is 0 or from the mean floor
    return [const, shift, (bad_t, bad_v), (t, zeros), (t[:1], np.array([1.0])), (t[:0], t[:0])]


def twin_scores(p: SpikeLevelParams, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    tw = Twin(p)
    return np.array([tw.step(float(a), float(b)) for a, b in zip(t, v, strict=True)])


def vector_scores(p: SpikeLevelParams, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    det = SpikeLevel(p)
    state = det.new_state(1)
    return np.array(
        [det.step(state, np.array([a]), np.array([b]))[0] for a, b in zip(t, v, strict=True)]
    )


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-9, atol=1e-9)


# -- tests ----------------------------------------------------------------------------
@pytest.mark.parametrize("params", VARIANTS, ids=["default", "small", "no_recur", "no_season"])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_series_match_twin(params: SpikeLevelParams, seed: int) -> None:
    step = 3600.0 if params is SMALL else 300.0
    t, v = seasonal_series(seed, 1500, step)
    want = twin_scores(params, t, v)
    assert np.nanmax(want) > 0.5  # something was detected: the comparison is not vacuous
    assert_same(vector_scores(params, t, v), want)


@pytest.mark.parametrize("params", [VARIANTS[0], SMALL], ids=["default", "small"])
def test_hand_picked_series_match_twin(params: SpikeLevelParams) -> None:
    for t, v in hand_picked():
        assert_same(vector_scores(params, t, v), twin_scores(params, t, v))


def test_non_finite_and_stale_points_are_not_judged_and_change_nothing() -> None:
    det = SpikeLevel()
    t, v = seasonal_series(3, 300, 300.0)
    state = det.new_state(1)
    for a, b in zip(t, v, strict=True):
        det.step(state, np.array([a]), np.array([b]))
    for bad_t, bad_v in ((t[-1], 1.0), (t[-1] - 5, 1.0), (np.nan, 1.0), (t[-1] + 300, np.nan),
                         (t[-1] + 300, np.inf), (np.inf, 1.0)):  # fmt: skip
        before = state.copy()
        out = det.step(state, np.array([bad_t]), np.array([bad_v]))
        assert np.isnan(out[0])
        np.testing.assert_array_equal(state, before)


@pytest.mark.parametrize("params", [VARIANTS[0], SMALL], ids=["default", "small"])
def test_batch_of_series_with_different_lengths_matches_twin(params: SpikeLevelParams) -> None:
    step = 3600.0 if params is SMALL else 300.0
    series = [seasonal_series(10 + i, n, step) for i, n in enumerate([0, 1, 40, 700, 1200, 333])]
    series += hand_picked()
    det = SpikeLevel(params)
    state = det.new_state(len(series))
    got = score_points(det, state, [s[0] for s in series], [s[1] for s in series])
    for (t, v), g in zip(series, got, strict=True):
        assert_same(g, twin_scores(params, t, v))


def test_warm_up_scores_are_neutral() -> None:
    for params in (VARIANTS[0], SMALL):
        t, v = seasonal_series(5, 400, 300.0)
        v[: params.warmup] = np.linspace(0, 1e6, params.warmup)  # wild: still neutral
        got = vector_scores(params, t, v)
        assert np.all(got[: params.warmup] == NEUTRAL_SCORE)
        assert np.any(got[params.warmup :] != NEUTRAL_SCORE)


def test_warm_up_counts_judged_points_only() -> None:
    p = SMALL
    t = 1.5e9 + 3600.0 * np.arange(30)
    v = np.arange(30.0) ** 2
    v[:5] = np.nan  # not judged, not learned
    got = vector_scores(p, t, v)
    assert np.all(np.isnan(got[:5]))
    assert np.all(got[5 : 5 + p.warmup] == NEUTRAL_SCORE)


def test_state_round_trip_continues_bit_for_bit() -> None:
    det = SpikeLevel()
    t, v = seasonal_series(7, 1400, 300.0)
    whole = det.new_state(1)
    straight = [det.step(whole, t[i : i + 1], v[i : i + 1])[0] for i in range(len(t))]
    state = det.new_state(1)
    resumed = []
    for i in range(len(t)):
        if i in (500, 1000):
            blob = det.layout.pack_rows(state)[0]
            state, ok = det.layout.unpack_rows([blob], det.new_state(1))
            assert ok[0]
        resumed.append(det.step(state, t[i : i + 1], v[i : i + 1])[0])
    np.testing.assert_array_equal(np.array(straight), np.array(resumed))


def test_interface_and_state_width() -> None:
    det = SpikeLevel()
    assert det.name == "spike_level"
    assert det.version >= 3
    assert det.layout.width <= 1000
    state = det.new_state(3)
    assert state.shape == (3, det.layout.width)
    out = det.step(state, np.array([1.5e9, 1.5e9, np.nan]), np.array([1.0, np.nan, 1.0]))
    assert out[0] == NEUTRAL_SCORE and np.isnan(out[1]) and np.isnan(out[2])


def test_on_regular_timestamps_the_peaks_decay_once_per_point() -> None:
    """Counting memory in expected points changes nothing for a metric that never
    misses a point: its scores equal those of ``gap_window=0``."""
    t = 1.5e9 + 300.0 * np.arange(1500)
    v = np.random.default_rng(11).normal(10.0, 1.0, 1500)
    v[[500, 900, 1300]] += [15.0, 9.0, 12.0]
    per_point = SpikeLevelParams(gap_window=0)
    assert_same(vector_scores(SpikeLevelParams(), t, v), vector_scores(per_point, t, v))


def test_a_gap_counts_as_the_points_that_did_not_arrive() -> None:
    """After a large spike and then ten silent days, a smaller spike is news: the
    peak has decayed as over 2,880 points, not over one."""
    rng = np.random.default_rng(12)
    t = 1.5e9 + 300.0 * np.arange(1200)
    t[1000:] += 10 * DAY
    v = rng.normal(10.0, 1.0, 1200)
    v[700] += 60.0  # sets the spike peak
    v[1100] += 12.0  # a fifth of it, after the gap
    per_point = vector_scores(SpikeLevelParams(gap_window=0), t, v)
    per_expected_point = vector_scores(SpikeLevelParams(), t, v)
    assert per_point[1100] < 0.5  # 0.44: far below the analyzer's threshold (0.75)
    assert per_expected_point[1100] > 0.8  # 0.88: alerted


def test_a_point_beyond_every_value_seen_counts_record_boost_times_the_odds() -> None:
    """A spike of 25 two hundred points after one of 40: inside the range the early spike
    set upwards, its score is the same with and without the boost; beyond the range
    of a series whose early spike went down, its odds are exactly ``record_boost``
    times as large (the peaks the early spike left stand far above the floor)."""
    t = 1.5e9 + 300.0 * np.arange(1400)
    noise = np.random.default_rng(13).normal(0.0, 1.0, 1400)
    up, down = 10.0 + noise, 10.0 + noise
    up[600] += 40.0
    down[600] -= 40.0
    up[800] += 25.0
    down[800] += 25.0
    off = SpikeLevelParams(record_boost=1.0)
    inside = [vector_scores(p, t, up)[800] for p in (off, SpikeLevelParams())]
    beyond = [vector_scores(p, t, down)[800] for p in (off, SpikeLevelParams())]
    assert inside[0] == inside[1]
    odds = [s / (1.0 - s) for s in beyond]
    assert odds[1] == pytest.approx(SpikeLevelParams().record_boost * odds[0], rel=1e-9)
    assert inside[1] < 0.75 < beyond[1]  # 0.65 and 0.82: only the new extreme alerts


def test_no_record_boost_before_burn_in() -> None:
    """Early on every new value is an extreme; the range is learned from the first
    point, but it only counts once ``burn_in`` points have been learned."""
    t = 1.5e9 + 300.0 * np.arange(900)
    v = 10.0 + 0.02 * np.arange(900) + np.random.default_rng(14).normal(0.0, 1.0, 900)  # rising
    v[50::70] += 12.0  # spikes, so the peaks stand above the floor
    boosted = vector_scores(SpikeLevelParams(), t, v)
    plain = vector_scores(SpikeLevelParams(record_boost=1.0), t, v)
    burn_in = SpikeLevelParams().burn_in
    assert_same(boosted[:burn_in], plain[:burn_in])
    assert not np.allclose(boosted[burn_in:], plain[burn_in:])


def test_on_plain_noise_a_new_extreme_scores_as_any_point() -> None:
    """Gaussian noise sets new extremes now and then; its surprises stay below the
    floor, which the record rule does not lower, so nothing changes (a boost of the
    odds themselves alerted on 8 of 400 such series a day)."""
    t = 1.5e9 + 60.0 * np.arange(1440)
    rng = np.random.default_rng(15)
    for _ in range(10):
        v = 100.0 + rng.normal(0.0, 1.0, 1440)
        plain = vector_scores(SpikeLevelParams(record_boost=1.0), t, v)
        assert_same(vector_scores(SpikeLevelParams(), t, v), plain)


def test_a_level_never_held_before_counts_as_a_new_extreme() -> None:
    """Spikes to 16 set the values' range; a plateau at 14 stays inside it, but the
    mean of its last ``level_recent`` values is above every mean before (about 11 at
    the spikes): its bar is lowered, so it scores higher than without the rule."""
    t = 1.5e9 + 300.0 * np.arange(1200)
    v = 10.0 + np.random.default_rng(16).normal(0.0, 0.5, 1200)
    v[100:1100:100] = 16.0
    v[1150:1160] = 14.0 + np.random.default_rng(17).normal(0.0, 0.5, 10)
    assert v[1150:1160].max() < 16.0
    boosted = vector_scores(SpikeLevelParams(), t, v)[1150:1160]
    plain = vector_scores(SpikeLevelParams(record_boost=1.0), t, v)[1150:1160]
    assert (boosted >= plain).all() and (boosted > plain).any()
