#!/usr/bin/env python
"""Research probes on ``SpikeLevel`` (issue 13): changes to its reference and its
spread, and value transforms, each scored on NAB as ``utils/nab_select.py`` scores
a variant.  Not used by any daemon; ``docs/accuracy.md`` records the results.

Each argument names a probe and its keyword arguments; every probe starts from
``SpikeLevelParams`` with the ``--params`` overrides (none: the shipped version 9;
``"{'spike_weight': 1.0}"``: version 8; add ``'level_recent': 6, 'level_past': 120,
'record_boost': 2.0`` for version 7; for the older versions add those two level
settings and ``'spike_weight': 1.0`` to ``"{'record_boost': 1.0,
'repeat_block': 20, 'gap_window': 7}"``: version 5; ``"{'record_boost': 1.0,
'repeat_block': 1, 'gap_window': 15}"``: version 4; the same with ``'gap_window': 0``:
version 3), and ``at(overrides, name, ...)`` runs probe ``name`` on other base
parameters.  Probes that compute their own score from ``ratios`` leave out the lower
bar of versions 6 to 9 for new extremes and version 9's spike weight: run them with
``record_boost`` 1 and ``spike_weight`` 1.  The
session-16 runs in docs/accuracy.md used the code of e607ab7 (version 6), where version
5's overrides did not need ``gap_window``:

    python utils/spike_level_probes.py --data ../shared/nab/data \\
        --params "{'gap_window': 0, 'repeat_block': 1, 'record_boost': 1.0}" \\
        "base()" "params(floor=4.5)" "slow(half_life=10000, c=0.85)" "soft(eta=0.5)" \\
        "short(c=0.7, blocks=2)" "counts('anscombe')" "counts('anscombe', max_median=20)" \\
        "time(seconds=300000)" "gaps('min')" "gaps('median', floor=False)"   # on version 3
    python utils/spike_level_probes.py --data ../shared/nab/data \\
        --params "{'record_boost': 1.0, 'repeat_block': 20, 'gap_window': 7}" "confirm()" "record()" \\
        "record(strict=True, a=0.5, spike_only=False, cap=1)" \\
        "at({'repeat_block': 1, 'gap_window': 15}, 'gaps', 'min')"        # on version 5

Printed per probe: in-sample / leave-one-category-out (threshold chosen without
the held-out category) for the three profiles, and the standard score of the two
halves of the corpus (files by name, even and odd positions), each at its own
threshold.  ``--select`` adds the selection CV over all the probes given (variant
and threshold chosen without the held-out category), ``--nested`` the nested CV
(``crossval.nested``; slow).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import ast  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from skyline.analysis.algorithms.spike_level import BIG_Z, SpikeLevel, SpikeLevelParams, _win  # noqa: E402
from skyline.analysis.algorithms.spike_level_features import MAD_SCALE  # noqa: E402
from skyline.analysis.algorithms.state import StateLayout, shift_in  # noqa: E402
from skyline.analysis.algorithms.stepping import score_points  # noqa: E402
from skyline.analysis.algorithms.streaming import NEUTRAL_SCORE  # noqa: E402
from skyline.analysis.nab import crossval, runner, scoring  # noqa: E402


class Probe(SpikeLevel):
    """A probe with state fields of its own, appended to the detector's layout."""

    _own: tuple[tuple[str, int, object], ...] = ()

    def _add_fields(self, *own: tuple[str, int, object]) -> None:
        """Each field as (name, width, initial value; None leaves ``new_state``'s NaN)."""
        lay = self.layout
        added = tuple((name, width) for name, width, _ in own)
        self.layout = StateLayout(lay.name, lay.version, lay.fields + added)
        self._own = self._own + own

    def new_state(self, m: int) -> np.ndarray:
        state = super().new_state(m)
        for name, _, init in self._own:
            if init is not None:
                self.layout.view(state, name)[:] = init
        return state


class SlowReference(Probe):
    """The reference of each surprise is also ``c`` times a slowly decaying peak
    (half-life ``half_life`` points), and with ``eta < 1`` the fast peak moves
    only part of the way to a new maximum (a peak that learns slowly from
    anomalies, so the next one of the same size still surprises)."""

    def __init__(self, params: SpikeLevelParams, half_life: float = 1e12, c: float = 0.0,
                 eta: float = 1.0) -> None:  # fmt: skip
        super().__init__(params)
        self.c, self.eta = c, eta
        self.slow_decay = 0.5 ** (1.0 / half_life)
        self._add_fields(("spike_slow", 1, 0.0), ("level_slow", 1, 0.0))

    def _raw_score(self, state: np.ndarray, f: dict) -> np.ndarray:
        odds = sum(np.minimum(r, BIG_Z) ** 4 for r in ratios(self, state, f, self.c))
        return warm_score(self, state, odds)

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        lay = self.layout
        feed = ok & (lay.view(state, "n") >= self.params.burn_in)
        before = {peak: lay.view(state, peak).copy() for _, peak, _ in PEAKS}
        super()._learn(state, ok, v, t, f, raw)
        for feat, peak, slow in PEAKS:
            s = lay.view(state, slow)
            s[:] = np.where(feed, np.maximum(f[feat], s * self.slow_decay), s)
            if self.eta < 1.0:
                decayed = before[peak] * self._decay
                soft = np.where(
                    f[feat] > decayed, decayed + self.eta * (f[feat] - decayed), decayed
                )
                lay.view(state, peak)[:] = np.where(feed, soft, before[peak])


PEAKS = (("f_spike", "spike_peak", "spike_slow"), ("f_level", "level_peak", "level_slow"))


def ratios(det: SpikeLevel, state: np.ndarray, f: dict, slow: float = 0.0) -> list[np.ndarray]:
    """Each surprise over its reference, as ``SpikeLevel._raw_score`` computes them
    without the lower bar for new extremes (versions 6 to 9) or the spike weight
    (version 9); with ``slow``, the
    reference is also at least that times the slow peak."""
    lay, out = det.layout, []
    for i, (feat, peak, slow_peak) in enumerate(PEAKS):
        ref = np.maximum(math.log1p(det.params.floor), lay.view(state, peak))
        if slow:
            ref = np.maximum(ref, slow * lay.view(state, slow_peak))
        out.append(f[feat] / np.fmax(ref, f["recur"][:, i]))
    return out


def warm_score(det: SpikeLevel, state: np.ndarray, odds: np.ndarray) -> np.ndarray:
    """``odds / (1 + odds)``, neutral while the row warms up."""
    warm = det.layout.view(state, "n") >= det.params.warmup
    return np.where(warm, odds / (1.0 + odds), NEUTRAL_SCORE)


class ShortSpread(SpikeLevel):
    """The spike spreads are at least ``c`` times a short-memory MAD (the median
    of the last ``blocks`` block medians): a spike in an already noisy stretch is
    less surprising."""

    def __init__(self, params: SpikeLevelParams, c: float = 1.0, blocks: int = 2,
                 names=("spike", "season")) -> None:  # noqa: ANN001  # fmt: skip
        super().__init__(params)
        self.c, self.blocks, self.short_names = c, blocks, names

    def _spread(self, state: np.ndarray, name: str) -> np.ndarray:
        long = super()._spread(state, name)
        if name not in self.short_names:
            return long
        sp = self.spreads
        first = sp.names.index(name) * sp.blocks + sp.blocks
        meds = self.layout.view(state, f"{sp.p}_med")[:, first - self.blocks : first]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no blocks yet
            short = MAD_SCALE * np.nanmedian(meds, axis=1)
        return np.where(np.isfinite(short), np.fmax(long, self.c * short), long)


class PeakDecay(Probe):
    """Other ways to decay the peaks between points than version 4's: ``"time"``,
    ``0.5 ** (dt / seconds)``; ``"min"``, version 4's rule with the typical interval
    taken as the smallest interval seen so far; ``"median"``, version 4's rule
    (median of the last ``gap_window`` intervals), optionally without its floor of
    one decay per point or with the number of intervals capped."""

    def __init__(self, params: SpikeLevelParams, how: str, seconds: float = 300000.0,
                 floor: bool = True, cap: float = math.inf) -> None:  # fmt: skip
        window = params.gap_window or 15
        super().__init__(replace(params, gap_window=window if how == "median" else 0))
        self.how, self.seconds, self.floor, self.cap = how, seconds, floor, cap
        if how == "min":
            self._add_fields(("step", 1, np.inf))

    def _peak_decay(self, state: np.ndarray, ok: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.how == "median":
            k = self._intervals(state, ok, t)
        else:
            dt = t - self.layout.view(state, "last_ts")
            known = ok & np.isfinite(dt)
            if self.how == "time":
                return 0.5 ** (np.where(known, dt, 0.0) / self.seconds)
            step = self.layout.view(state, "step")  # "min"
            step[:] = np.where(known & (dt > 0), np.fmin(step, dt), step)
            k = np.where(known & np.isfinite(step), dt / step, 1.0)
        k = np.minimum(k, self.cap)
        return self._decay ** (np.maximum(k, 1.0) if self.floor else k)


class ZDecay(SpikeLevel):
    """The peaks decay in z rather than in ``log1p(z)``: between points the peak's z
    is multiplied by ``0.5 ** (k / half_life)`` (k typical intervals, as version 4
    counts them), so a large peak loses about ``ln 2`` of its log per half-life
    whatever its size, instead of half of it."""

    def __init__(self, params: SpikeLevelParams, half_life: float = 300.0) -> None:
        super().__init__(params)
        self.z_half_life = half_life
        self._k = np.ones(0)

    def _peak_decay(self, state: np.ndarray, ok: np.ndarray, t: np.ndarray) -> np.ndarray:
        decay = super()._peak_decay(state, ok, t)
        self._k = np.log(decay) / math.log(self._decay)
        return decay

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        lay = self.layout
        feed = ok & (lay.view(state, "n") >= self.params.burn_in)
        before = {peak: lay.view(state, peak).copy() for _, peak, _ in PEAKS}
        super()._learn(state, ok, v, t, f, raw)
        zdecay = 0.5 ** (self._k / self.z_half_life)
        for feat, peak, _ in PEAKS:
            decayed = np.log1p(np.expm1(before[peak]) * zdecay)
            lay.view(state, peak)[:] = np.where(feed, np.maximum(f[feat], decayed), before[peak])


class Volatility(Probe):
    """A third surprise, *volatility*: the median of the last ``w`` absolute spike
    residuals over the spike spread (about 0.67 for steady noise; a median, so one
    spike does not move it), compared on the ``log1p`` scale with its own floor and
    decaying peak like the other two, and added to the odds with weight
    ``weight``: noise that grows without one large point."""

    def __init__(self, params: SpikeLevelParams, w: int = 8, floor: float = 3.0,
                 weight: float = 1.0) -> None:  # fmt: skip
        super().__init__(params)
        self.w, self.vol_floor, self.weight = w, floor, weight
        self._add_fields(("vol_res", w, None), ("vol_peak", 1, 0.0))

    def _features(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> dict:
        f = super()._features(state, t, v)
        lay = self.layout
        res = state[:, lay.slice("vol_res")]
        spread = self._spread(state, "spike")
        now = np.abs(f["r_spike"])
        both = np.concatenate([res[:, 1:], now[:, None]], axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(both, axis=1)
        full = np.isfinite(both).all(axis=1)
        f["f_vol"] = np.where(full, np.log1p(self._z(med, spread)), 0.0)
        return f

    def _raw_score(self, state: np.ndarray, f: dict) -> np.ndarray:
        base = super()._raw_score(state, f)
        lay = self.layout
        ref = np.maximum(math.log1p(self.vol_floor), lay.view(state, "vol_peak"))
        extra = self.weight * np.minimum(f["f_vol"] / ref, BIG_Z) ** 4
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.where(base < 1.0, base / (1.0 - base), BIG_Z)
        return warm_score(self, state, odds + extra)

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        lay = self.layout
        n = lay.view(state, "n").copy()
        super()._learn(state, ok, v, t, f, raw)
        shift_in(state[:, lay.slice("vol_res")], np.abs(f["r_spike"]), ok & (n > 0))
        peak = lay.view(state, "vol_peak")
        feed = ok & (n >= self.params.burn_in)
        peak[:] = np.where(feed, np.maximum(f["f_vol"], peak * self._decay), peak)


class Power(SpikeLevel):
    """The two ratios combined as odds ``r_spike^p + r_level^p`` (version 4: p = 4):
    a larger p lets the larger surprise decide alone, a smaller one adds them up."""

    def __init__(self, params: SpikeLevelParams, p: float = 4.0) -> None:
        super().__init__(params)
        self.power = p

    def _raw_score(self, state: np.ndarray, f: dict) -> np.ndarray:
        # the 4th-power odds at r = 1 stay 1, so the threshold's scale is kept
        odds = sum(np.minimum(r, 1e3) ** self.power for r in ratios(self, state, f))
        return warm_score(self, state, odds)


class OddsShape(SpikeLevel):
    """``SpikeLevel``'s score with the level's odds weighed by ``level_weight`` (the
    spike's by the base parameters' ``spike_weight``; session 18 ran it on version 8,
    weight 1) and the spike's ratio raised to ``spike_power`` instead of 4: other ways
    to make a one-point excursion weaker evidence than a level shift of the same ratio;
    ``record_weight``: the spike's weight at a new extreme (default: the same)."""

    def __init__(self, params: SpikeLevelParams, level_weight: float = 1.0,
                 spike_power: float = 4.0, record_weight: float | None = None) -> None:  # fmt: skip
        super().__init__(params)
        self.level_weight, self.spike_power = level_weight, spike_power
        self.record_weight = params.spike_weight if record_weight is None else record_weight

    def _odds(self, r_spike: np.ndarray, r_level: np.ndarray, f: dict) -> np.ndarray:
        weight = self.params.spike_weight
        if self.records:
            weight = np.where(f["record"], self.record_weight, weight)
        return weight * r_spike**self.spike_power + self.level_weight * r_level**4


class RecurNoPeak(SpikeLevel):
    """A surprise at or below its recurring level (as large as one seen at about this
    time on each recent day) does not feed the decaying peak: what recurs daily is no
    news, so it does not raise the bar for the rest of the day either.  With
    ``margin`` m, a surprise up to ``m`` times the recurring level is held back."""

    def __init__(self, params: SpikeLevelParams, margin: float = 1.0) -> None:
        super().__init__(params)
        self.margin = margin
        self._decay_now = np.ones(0)

    def _peak_decay(self, state: np.ndarray, ok: np.ndarray, t: np.ndarray) -> np.ndarray:
        self._decay_now = super()._peak_decay(state, ok, t)
        return self._decay_now

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        lay = self.layout
        feed = ok & (lay.view(state, "n") >= self.params.burn_in)
        before = {peak: lay.view(state, peak).copy() for _, peak, _ in PEAKS}
        super()._learn(state, ok, v, t, f, raw)
        for i, (feat, peak, _) in enumerate(PEAKS):
            recurs = feed & (f[feat] <= self.margin * f["recur"][:, i])  # NaN: False
            p = lay.view(state, peak)
            p[:] = np.where(recurs, before[peak] * self._decay_now, p)


class Record(Probe):
    """How far a point goes past the metric's range so far: ``rec`` is the spike
    residual over the distance from the local median to the highest (or lowest)
    value seen before, 1 for a value equal to that extreme.  The spike odds are
    multiplied by ``clip(rec, a, cap)^q`` (``a`` < 1 mutes spikes inside the range,
    ``cap`` > 1 raises records).  With ``half_life``, the extremes decay towards
    the local median by half per that many points; ``spike_only`` False scales
    both odds."""

    def __init__(self, params: SpikeLevelParams, q: float = 1.0, a: float = 1.0,
                 cap: float = 4.0, half_life: float = math.inf, spike_only: bool = True,
                 after: int = 0, excursion: bool = False, strict: bool = False) -> None:  # fmt: skip
        super().__init__(params)
        self.q, self.a, self.cap, self.spike_only, self.after = q, a, cap, spike_only, after
        self.excursion, self.strict = excursion, strict
        self.keep = 0.5 ** (1.0 / half_life)
        self._add_fields(("rec_hi", 1, -np.inf), ("rec_lo", 1, np.inf))

    def _features(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> dict:
        f = super()._features(state, t, v)
        lay = self.layout
        local = v - f["r_spike"]
        hi, lo = lay.view(state, "rec_hi"), lay.view(state, "rec_lo")
        with np.errstate(invalid="ignore", divide="ignore"):
            up = np.where(hi > local, (v - local) / (hi - local), np.where(v > local, np.inf, 0.0))
            down = np.where(
                lo < local, (local - v) / (local - lo), np.where(v < local, np.inf, 0.0)
            )
        rec = np.fmax(up, down)
        if self.excursion:  # the spike residual over the largest one seen ("rec_hi")
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.abs(f["r_spike"])
                rec = np.where(hi > 0, r / hi, np.where(r > 0, np.inf, 0.0))
        f["rec"] = np.where(np.isfinite(local) & (lay.view(state, "n") >= self.after), rec, 1.0)
        f["local"] = local
        return f

    def _raw_score(self, state: np.ndarray, f: dict) -> np.ndarray:
        r_s, r_l = ratios(self, state, f)
        rec = np.nan_to_num(f["rec"], nan=1.0)
        m = np.clip(rec, self.a, self.cap) ** self.q
        if self.strict:  # inside the range or at its edge: a; beyond it: how far
            m = np.where(rec > 1.0, np.minimum(rec, self.cap), self.a) ** self.q
        o_s, o_l = np.minimum(r_s, BIG_Z) ** 4, np.minimum(r_l, BIG_Z) ** 4
        odds = o_s * m + (o_l if self.spike_only else o_l * m)
        return warm_score(self, state, odds)

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        super()._learn(state, ok, v, t, f, raw)
        lay = self.layout
        hi, lo, local = lay.view(state, "rec_hi"), lay.view(state, "rec_lo"), f["local"]
        if self.keep < 1.0:
            fin = ok & np.isfinite(local)
            hi[:] = np.where(fin & np.isfinite(hi), local + (hi - local) * self.keep, hi)
            lo[:] = np.where(fin & np.isfinite(lo), local + (lo - local) * self.keep, lo)
        if self.excursion:
            hi[:] = np.where(ok, np.fmax(hi, np.abs(f["r_spike"])), hi)
            return
        hi[:] = np.where(ok, np.fmax(hi, v), hi)
        lo[:] = np.where(ok, np.fmin(lo, v), lo)


class TopK(Probe):
    """Version 6's lower bar for a *near* extreme: a value above the ``k``-th highest
    or below the ``k``-th lowest seen (``k`` = 1: version 6 itself).  Written for
    version 6's code (e607ab7); on versions 7 to 9 its flag replaces theirs, so the
    means' record is dropped (``topk(1)`` is then version 6's rule with the shipped
    parameters)."""

    def __init__(self, params: SpikeLevelParams, k: int = 1) -> None:
        super().__init__(params)
        self.k = k
        self._add_fields(("top", k, -np.inf), ("bottom", k, np.inf))

    def _features(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> dict:
        f = super()._features(state, t, v)
        lay = self.layout
        top, bottom = _win(lay, state, "top"), _win(lay, state, "bottom")
        beyond = (v > top[:, 0]) | (v < bottom[:, -1])
        f["record"] = beyond & (lay.view(state, "n") >= self.params.burn_in)
        return f

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        super()._learn(state, ok, v, t, f, raw)
        lay = self.layout
        top, bottom = _win(lay, state, "top"), _win(lay, state, "bottom")
        top[ok] = np.sort(np.concatenate([top, v[:, None]], axis=1), axis=1)[ok, 1:]
        bottom[ok] = np.sort(np.concatenate([bottom, v[:, None]], axis=1), axis=1)[ok, :-1]


class LevelRecord(Probe):
    """Version 6 with the level surprise's bar lowered only when the mean of the last
    ``level_recent`` values is beyond the range of all such means seen (the spike's
    still by the value's own range); ``both``: either record lowers both bars;
    ``value`` False: the means' record alone lowers both.  Written for version 6's
    code (e607ab7): ``both=True`` is what versions 7 to 9 ship."""

    def __init__(self, params: SpikeLevelParams, both: bool = False, value: bool = True) -> None:
        super().__init__(params)
        self.both, self.value = both, value
        self._add_fields(("mean_range", 2, (np.inf, -np.inf)))

    def _features(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> dict:
        f = super()._features(state, t, v)
        lay, p = self.layout, self.params
        mean, span = f["mean"], lay.view(state, "mean_range")  # the detector's own mean
        f["level_record"] = ((mean < span[:, 0]) | (mean > span[:, 1])) & (
            lay.view(state, "n") >= p.burn_in
        )
        return f

    def _raw_score(self, state: np.ndarray, f: dict) -> np.ndarray:
        lay, p = self.layout, self.params
        ref = math.log1p(p.floor)
        low = p.record_boost**-0.25
        spike_rec, level_rec = f["record"], f["level_record"]
        if not self.value:  # the means' range alone, for both bars
            spike_rec = level_rec
        elif self.both:
            spike_rec = level_rec = spike_rec | level_rec
        out = []
        for i, (feat, peak, _) in enumerate(PEAKS):
            dyn = np.fmax(lay.view(state, peak), f["recur"][:, i])
            dyn = dyn * np.where(spike_rec if i == 0 else level_rec, low, 1.0)
            out.append(np.minimum(f[feat] / np.maximum(ref, dyn), BIG_Z) ** 4)
        return warm_score(self, state, out[0] + out[1])

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        super()._learn(state, ok, v, t, f, raw)
        span = self.layout.view(state, "mean_range")
        fin = ok & np.isfinite(f["mean"])
        span[:, 0] = np.where(fin, np.fmin(span[:, 0], f["mean"]), span[:, 0])
        span[:, 1] = np.where(fin, np.fmax(span[:, 1], f["mean"]), span[:, 1])


class Confirm(Probe):
    """An alert must last (like a Prometheus rule's ``for:``): a point's raw score
    counts in full only ``k`` points later, if at least a share ``c`` of the ``k``
    values after it stay beyond ``h`` times its height over the local median;
    meanwhile, and otherwise, it scores ``x`` times its raw score."""

    def __init__(self, params: SpikeLevelParams, k: int = 3, h: float = 0.5, c: float = 0.67,
                 x: float = 0.8) -> None:  # fmt: skip
        super().__init__(params)
        self.k, self.h, self.c, self.x = k, h, c, x
        self._add_fields(("cf_raw", k, None), ("cf_base", k, None), ("cf_val", k, None))

    def _features(self, state: np.ndarray, t: np.ndarray, v: np.ndarray) -> dict:
        f = super()._features(state, t, v)
        f["v"], f["local"] = v, v - f["r_spike"]
        return f

    def _raw_score(self, state: np.ndarray, f: dict) -> np.ndarray:
        raw = super()._raw_score(state, f)
        lay = self.layout
        raw_o = lay.view(state, "cf_raw")[:, 0]
        base = lay.view(state, "cf_base")[:, 0]
        vals = np.concatenate([lay.view(state, "cf_val")[:, 1:], f["v"][:, None]], axis=1)
        height = lay.view(state, "cf_val")[:, 0] - base
        with np.errstate(invalid="ignore", divide="ignore"):
            held = ((vals - base[:, None]) / height[:, None] >= self.h).mean(axis=1)
        sustained = (height != 0) & (held >= self.c) & (raw_o > 0.5)  # NaN: False
        f["raw_now"] = raw
        return np.where(sustained, np.fmax(self.x * raw, raw_o), self.x * raw)

    def _learn(self, state, ok, v, t, f, raw) -> None:  # noqa: ANN001
        super()._learn(state, ok, v, t, f, raw)
        lay = self.layout
        for name, x in (("cf_raw", f["raw_now"]), ("cf_base", f["local"]), ("cf_val", v)):
            shift_in(lay.view(state, name), x, ok)


TRANSFORMS = {"anscombe": lambda v: 2.0 * np.sqrt(v + 0.375), "log1p": np.log1p}


def is_count(values: np.ndarray, max_median: float) -> bool:
    return bool(np.all(values >= 0) and np.all(values == np.round(values))
                and np.median(values) < max_median)  # fmt: skip


def evaluate(label: str, det: SpikeLevel, series: list, windows: dict) -> tuple[str, list]:
    state = det.new_state(len(series))
    raw = score_points(det, state, [s.timestamps for s in series], [s.values for s in series])
    cases = [scoring.prepare(s.name, s.timestamps, np.nan_to_num(x, nan=0.0),
                             windows.get(s.name, [])) for s, x in zip(series, raw, strict=True)]  # fmt: skip
    row, n_windows = [], sum(c.n_windows for c in cases)
    for name, prof in scoring.PROFILES.items():
        _, r = scoring.optimise_threshold(cases, prof)
        cv = crossval.leave_one_category_out({label: cases}, prof)["score"]
        row.append(f"{name} {scoring.normalise(r, n_windows, prof):.1f} / {cv:.1f}")
    std = scoring.PROFILES["standard"]
    halves = []
    for half in (cases[0::2], cases[1::2]):
        _, r = scoring.optimise_threshold(half, std)
        halves.append(f"{scoring.normalise(r, sum(c.n_windows for c in half), std):.1f}")
    return f"{label}: " + "; ".join(row) + f"; halves {' / '.join(halves)}", cases


def probe_table(base: SpikeLevelParams, series: list) -> dict:
    """Each probe's name: a function of its arguments giving (detector, series)."""

    def counts(transform: str, max_median: float = math.inf) -> tuple:
        tf = TRANSFORMS[transform]
        moved = [replace(s, values=tf(s.values)) if is_count(s.values, max_median) else s
                 for s in series]  # fmt: skip
        return SpikeLevel(base), moved

    return {"base": lambda: (SpikeLevel(base), series), "counts": counts,
            "params": lambda **k: (SpikeLevel(replace(base, **k)), series),
            "slow": lambda **k: (SlowReference(base, **k), series),
            "soft": lambda eta: (SlowReference(base, eta=eta), series),
            "short": lambda **k: (ShortSpread(base, **k), series),
            "time": lambda seconds: (PeakDecay(base, "time", seconds=seconds), series),
            "gaps": lambda how, **k: (PeakDecay(base, how, **k), series),
            "zdecay": lambda **k: (ZDecay(base, **k), series),
            "vol": lambda **k: (Volatility(base, **k), series),
            "power": lambda p: (Power(base, p), series),
            "odds": lambda **k: (OddsShape(base, **k), series),
            "recurnopeak": lambda **k: (RecurNoPeak(base, **k), series),
            "record": lambda **k: (Record(base, **k), series),
            "confirm": lambda **k: (Confirm(base, **k), series),
            "topk": lambda k: (TopK(base, k), series),
            "levelrecord": lambda **k: (LevelRecord(base, **k), series)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="DIR/<category>/<file>.csv")
    p.add_argument("--params", default="{}", help="SpikeLevelParams overrides for every probe")
    p.add_argument("--select", action="store_true", help="also the selection CV over the probes")
    p.add_argument("--nested", action="store_true", help="also the nested CV (slow)")
    p.add_argument("probes", nargs="*", default=["base()"])
    a = p.parse_args(argv)
    base = SpikeLevelParams(**ast.literal_eval(a.params))
    windows = runner.load_windows(runner.default_labels(a.data))
    series = [runner.read_series(a.data, n) for n in runner.corpus_files(a.data)]

    probes = probe_table(base, series)
    # a probe on other base parameters: "at({'repeat_block': 1}, 'gaps', 'min')"
    probes["at"] = lambda over, name, *args, **kw: probe_table(replace(base, **over), series)[name](
        *args, **kw
    )
    offered = {}
    for arg in a.probes:
        det, data = eval(arg, {"__builtins__": {}}, probes)  # noqa: S307 (a research tool's own arguments)
        line, offered[arg] = evaluate(arg, det, data, windows)
        print(line, flush=True)
    for name, prof in scoring.PROFILES.items() if a.select else ():
        r = crossval.leave_one_category_out(offered, prof)
        picks = ", ".join(f"{f['held_out']}: {f['variant']}" for f in r["folds"])
        print(f"selection CV {name}: {r['score']:.1f} ({picks})", flush=True)
    for name, prof in scoring.PROFILES.items() if a.nested else ():
        r = crossval.nested(offered, prof)
        picks = ", ".join(f"{f['held_out']}: {f['variant']}" for f in r["folds"])
        print(f"nested CV {name}: {r['score']:.1f} ({picks})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
