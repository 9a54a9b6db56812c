#!/usr/bin/env python
"""Research prototype (issue 13): an ARTime-style adaptive-resonance detector, alone and
combined with SpikeLevel, measured on NAB with leave-one-category-out selection CV.

Scalar, one file at a time, slow on purpose (obviously streaming: each point is
scored from the state built on the points before it, then learned).  Not used by
any daemon.  Idea (from the description of Hampton's ARTime, 2021; implemented
here from that description only): fuzzy ART over sliding windows of the series.

* The series is optionally aggregated (mean of ``agg`` points); the last ``win``
  aggregates form the input window.
* A category is a hyper-box [lo, hi] per window position, kept in the series' own
  units (so re-normalisation when the running range grows is exact).  Fuzzy ART's
  match of a window x with complement coding, in units of the running range R, is
  ``1 - (sum(hi - lo) + dist(x, box)) / (win * R)``.
* Score before learn: the *deficit* ``d = 1 - max match`` over the learned
  categories.  Learning: the category of highest choice value whose match passes
  ``rho`` (the upper vigilance) grows to include x (rate ``beta``); if none
  passes, x founds a new category (least recently used one replaced at ``k_max``).
  The lower vigilance of dual-vigilance ART is the threshold on ``d`` that NAB's
  corpus optimisation picks (chosen by CV like every threshold).
* Score modes: ``d`` the deficit itself (in units of the running range);
  ``peak`` the deficit over its own decaying peak (half-life ``half_life``,
  floor ``peak_floor``, fed after ``warm`` points), ``r ** power / (1 + r ** power)``
  as SpikeLevel does with its surprises; ``run`` / ``peakrun``: the score grows
  with the number of consecutive novel windows (ARTime's confidence in a novelty).
* ``shape``: the window's mean is subtracted first (shape, not level).

Combinations (``combo``) take SpikeLevel's *undamped* raw score s1 (odds
``s1 / (1 - s1)``) and the ART score s2 read as odds ``s2 / (1 - s2)``: ``odds``
adds ``w`` times the ART odds, ``max`` takes ``max(s1, w s2)``, ``noisy`` the
noisy-or ``1 - (1 - s1)(1 - w s2)``, ``gateG`` multiplies SpikeLevel's odds by
``min(1, r / w) ** G`` (a familiar window mutes a surprise); then one alert per
event (SpikeLevel's repeat damping, 60 rows, x 0.5), so ``w = 0`` is SpikeLevel
exactly.  ``--team`` also offers the 31 SpikeLevel variants of docs/accuracy.md
to the selection CV (alone they reproduce its 60.1 / 45.6 / 65.6).

    python utils/artime_proto.py --data $NAB/data spike
    python utils/artime_proto.py --data $NAB/data --damp art "{}" "{'mode': 'peak'}"
    python utils/artime_proto.py --data $NAB/data --team --out r.json combo \
        "({'mode': 'peak', 'shape': True, 'peak_floor': 0.1}, 0.2, 0, 'odds')"

Scores are cached under ``$ART_CACHE`` (default /tmp/acc-art-cache), keyed by the
parameters.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import ast  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from nab_variants import SELECTION_VARIANTS  # noqa: E402  (utils/, the script's directory)

from skyline.analysis.algorithms.spike_level import SpikeLevel, SpikeLevelParams  # noqa: E402
from skyline.analysis.algorithms.stepping import score_points  # noqa: E402
from skyline.analysis.nab import crossval, runner, scoring  # noqa: E402

CACHE = Path(os.environ.get("ART_CACHE", "/tmp/acc-art-cache"))

_row_value = scoring.FileCase.row_value


def _memo_row_value(self: scoring.FileCase, tp: float, fp: float) -> np.ndarray:
    """The harness's row values, computed once per case and profile (speed only)."""
    memo = self.__dict__.setdefault("_memo", {})
    if (tp, fp) not in memo:
        memo[(tp, fp)] = _row_value(self, tp, fp)
    return memo[(tp, fp)]


scoring.FileCase.row_value = _memo_row_value  # type: ignore[method-assign]


@dataclass(frozen=True)
class ArtParams:
    win: int = 8  # aggregates per input window
    agg: int = 1  # raw points per aggregate
    rho: float = 0.9  # upper vigilance: match needed to learn into a category
    beta: float = 1.0  # learning rate (1: fast learning)
    alpha: float = 0.01  # choice parameter
    k_max: int = 64  # categories kept (LRU replacement)
    warm: int = 400  # points learned before scoring
    scale: str = "range"  # range | mad: the unit of the window space
    mode: str = "d"  # d: the deficit; run: consecutive novel windows; peak: d / decaying peak
    novel: float = 0.1  # run mode: deficit of a novel window
    shape: bool = False  # subtract the window mean (shape only)
    peak_floor: float = 0.05  # peak mode: smallest reference deficit
    half_life: float = 1000.0  # peak mode: half-life of the decaying peak (points)
    power: float = 4.0  # peak mode: score r^p / (1 + r^p)


def art_scores(v: np.ndarray, p: ArtParams) -> np.ndarray:
    """Deficit-based score per point (NaN points: NaN, not learned)."""
    n = len(v)
    out = np.full(n, np.nan)
    lo = np.zeros((p.k_max, p.win))
    hi = np.zeros((p.k_max, p.win))
    used = np.zeros(p.k_max, dtype=bool)
    last = np.zeros(p.k_max)
    window = np.zeros(p.win)
    filled = 0
    acc, cnt, seen = 0.0, 0, 0
    vmin, vmax = np.inf, -np.inf
    run = 0
    peak = 0.0
    absdiff: list[float] = []  # mad scale: the last 1,000 absolute first differences
    prev = np.nan
    score = 0.0
    for i in range(n):
        x = float(v[i])
        if not np.isfinite(x):
            continue
        seen += 1
        acc += x
        cnt += 1
        if cnt < p.agg:
            out[i] = 0.0 if seen <= p.warm else score * 0.0
            vmin, vmax = min(vmin, x), max(vmax, x)
            continue
        a = acc / cnt
        acc, cnt = 0.0, 0
        window = np.roll(window, -1)
        window[-1] = a
        filled = min(filled + 1, p.win)
        if p.scale == "mad":
            if np.isfinite(prev):
                absdiff.append(abs(a - prev))
                if len(absdiff) > 1000:
                    absdiff.pop(0)
            prev = a
            unit = 1.4826 * float(np.median(absdiff)) * 10 if absdiff else 0.0
        else:
            unit = max(vmax, x) - min(vmin, x)
        vmin, vmax = min(vmin, x), max(vmax, x)
        if filled < p.win or unit <= 0:
            out[i] = 0.0
            continue
        xw = window - window.mean() if p.shape else window
        d = 1.0
        best = -1
        if used.any():
            idx = np.flatnonzero(used)
            size = (hi[idx] - lo[idx]).sum(1) / unit
            dist = (np.maximum(lo[idx] - xw, 0) + np.maximum(xw - hi[idx], 0)).sum(1) / unit
            match = 1.0 - (size + dist) / p.win
            d = float(max(0.0, 1.0 - match.max()))
            choice = (p.win - size - dist) / (p.alpha + p.win - size)
            ok = match >= p.rho
            if ok.any():
                best = int(idx[ok][np.argmax(choice[ok])])
        # score before learn
        if p.mode == "run":
            run = run + 1 if d > p.novel else 0
            s = 1.0 - 0.5**run
        elif p.mode in ("peak", "peakrun"):
            r = d / max(peak, p.peak_floor)
            o = r**p.power
            if p.mode == "peakrun":  # confidence grows with consecutive novel windows
                run = run + 1 if r >= p.novel else 0
                o *= 1.0 + run
            s = o / (1 + o)
            if seen > p.warm:
                peak = max(d, peak * 0.5 ** (1 / p.half_life))
        else:
            s = d
        score = s
        out[i] = 0.0 if seen <= p.warm else s
        # learn
        if best >= 0:
            lo[best] += p.beta * (np.minimum(lo[best], xw) - lo[best])
            hi[best] += p.beta * (np.maximum(hi[best], xw) - hi[best])
        else:
            best = int(np.argmin(np.where(used, last, -1.0)))
            lo[best] = xw
            hi[best] = xw
            used[best] = True
        last[best] = seen
    return out


def repeat_damp(s: np.ndarray, window: int = 60, damping: float = 0.5) -> np.ndarray:
    """SpikeLevel's one alert per event, causally: a score not above one of the
    previous ``window`` scores is multiplied by ``damping``."""
    out = s.copy()
    x = np.nan_to_num(s, nan=0.0)
    for i in range(len(s)):
        lo = max(0, i - window)
        if i > 0 and x[i] > 0 and x[lo:i].max() >= x[i]:
            out[i] = s[i] * damping
    return out


def load(data: Path):
    windows = runner.load_windows(runner.default_labels(data))
    series = [runner.read_series(data, n) for n in runner.corpus_files(data)]
    return series, windows


def cases(series, windows, scores) -> list:
    return [scoring.prepare(s.name, s.timestamps, np.nan_to_num(x, nan=0.0),
                            windows.get(s.name, [])) for s, x in zip(series, scores, strict=True)]  # fmt: skip


def spike(series, damping: float, overrides: dict | None = None) -> list[np.ndarray]:
    params = SpikeLevelParams(**{**(overrides or {}), "repeat_damping": damping})
    key = hashlib.sha1(params.describe().encode()).hexdigest()[:12]
    f = CACHE / f"spike_{key}.npz"
    if f.exists():
        z = np.load(f)
        return [z[str(i)] for i in range(len(series))]
    det = SpikeLevel(params)
    state = det.new_state(len(series))
    raw = score_points(det, state, [s.timestamps for s in series], [s.values for s in series])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(f, **{str(i): r for i, r in enumerate(raw)})
    return raw


def art(series, overrides: dict) -> list[np.ndarray]:
    p = ArtParams(**overrides)
    key = hashlib.sha1(json.dumps(asdict(p), sort_keys=True).encode()).hexdigest()[:12]
    f = CACHE / f"art_{key}.npz"
    if f.exists():
        z = np.load(f)
        return [z[str(i)] for i in range(len(series))]
    t0 = time.process_time()
    out = [art_scores(s.values, p) for s in series]
    print(f"  art {overrides} computed in {time.process_time() - t0:.0f} s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(f, **{str(i): r for i, r in enumerate(out)})
    return out


def combine(s1: np.ndarray, d: np.ndarray, w: float, d_scale: float, how: str) -> np.ndarray:
    """SpikeLevel's undamped score s1 with an ART output d: a deficit turned into odds
    ``(d / d_scale) ** 4`` (``d_scale > 0``) or a score in [0, 1) read as odds
    ``d / (1 - d)`` (``d_scale == 0``); then one alert per event."""
    s1 = np.clip(np.nan_to_num(s1, nan=0.0), 0.0, 1.0 - 1e-12)
    d = np.nan_to_num(d, nan=0.0)
    if d_scale > 0:
        o2 = (d / d_scale) ** 4
    else:
        d = np.clip(d, 0.0, 1.0 - 1e-12)
        o2 = d / (1.0 - d)
    s2 = o2 / (1.0 + o2)
    if how == "odds":
        o = s1 / (1.0 - s1) + w * o2
        s = o / (1.0 + o)
    elif how == "max":
        s = np.maximum(s1, w * s2)
    elif how.startswith("gate"):  # familiar window (small ART ratio) -> smaller odds
        g = float(how[4:] or 2)
        o = s1 / (1.0 - s1) * np.minimum(1.0, o2**0.25 / w) ** g
        s = o / (1.0 + o)
    else:  # noisy-or
        s = 1.0 - (1.0 - s1) * (1.0 - w * s2)
    return repeat_damp(s)


def evaluate(name: str, cs: list, n_windows: int) -> list[str]:
    row = []
    for prof in scoring.PROFILES.values():
        thr, raw = scoring.optimise_threshold(cs, prof)
        cv = crossval.leave_one_category_out({name: cs}, prof)["score"]
        row.append(f"{scoring.normalise(raw, n_windows, prof):.1f}/{cv:.1f}@{thr:.3f}")
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--damp", action="store_true", help="art: apply repeat damping")
    ap.add_argument("--out", type=Path, help="write the selection-CV report JSON here")
    ap.add_argument(
        "--team",
        action="store_true",
        help="combo: also offer the 31 SpikeLevel variants to the selection",
    )
    ap.add_argument("what", choices=["spike", "art", "combo"])
    ap.add_argument("variants", nargs="*")
    a = ap.parse_args(argv)
    series, windows = load(a.data)
    n_windows = sum(len(windows.get(s.name, [])) for s in series)
    variants: dict[str, list] = {}
    if a.what == "spike":
        variants["spike"] = cases(series, windows, spike(series, 0.5))
    elif a.what == "art":
        for arg in a.variants or ["{}"]:
            sc = art(series, ast.literal_eval(arg))
            if a.damp:
                sc = [repeat_damp(x) for x in sc]
            variants[arg] = cases(series, windows, sc)
    else:
        variants["spike"] = cases(series, windows, spike(series, 0.5))
        if a.team:
            for ov in SELECTION_VARIANTS[1:]:
                variants[f"spike{ov}"] = cases(series, windows, spike(series, 0.5, ov))
        for arg in a.variants:
            ov, w, ds, how, *rest = ast.literal_eval(arg)  # rest: SpikeLevel overrides
            d = art(series, ov)
            s1 = spike(series, 1.0, rest[0]) if rest else spike(series, 1.0)
            variants[arg] = cases(series, windows,
                                  [combine(x, y, w, ds, how) for x, y in zip(s1, d, strict=True)])  # fmt: skip
    for name, cs in variants.items():
        if name.startswith("spike{"):
            continue
        print(f"{name}: in-sample/CV(thr)@thr std {' | '.join(evaluate(name, cs, n_windows))}",
              flush=True)  # fmt: skip
    reports = {}
    own = {k: v for k, v in variants.items() if not k.startswith("spike{")}
    for label, offered in (("with the 31 SpikeLevel variants", variants), ("own", own)):
        if len(offered) < 2 or (label == "own" and not a.team):
            continue
        rep = reports[label] = crossval.report(offered)
        for pname, r in rep.items():
            folds = [f["variant"] for f in r["cross_validated"]["folds"]]
            print(f"selection CV ({label}, {len(offered)} variants) {pname}: "
                  f"{r['cross_validated']['score']:.1f} (in-sample best "
                  f"{r['in_sample']['variant']} {r['in_sample']['score']:.1f}); fold picks {folds}")  # fmt: skip
    if a.out:
        a.out.write_text(json.dumps(reports, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
