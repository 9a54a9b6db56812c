#!/usr/bin/env python
"""Research prototype (issue 13): changepoint, context and burst ideas on NAB.

Not production code: a numpy prototype stepping all corpus files in lockstep
(score before learn, no look-ahead) so that every variant can be scored with the
project's NAB harness, in-sample and by leave-one-category-out selection CV
(``skyline.analysis.nab.crossval``).  Ideas (each implemented from its published
description):

* ``bocpd``: Bayesian online changepoint detection (Adams & MacKay 2007), a
  Normal-Gamma model with Student-t predictive and a run-length distribution
  truncated to ``R`` slots (the last slot holds "R-1 or longer"), hazard 1/``lam``;
  features: the predictive two-sided tail probability of each point (mixture over
  run lengths, before learning it) and the posterior mass on short run lengths
  (recent changepoint).
* ``ctx``: a context learner on discretised recent values (CAD-OSE-like idea):
  values cut into ``B`` bins on a running robust range, a context is the last
  ``L`` bins; counts of (context, next bin) kept in hashed, decaying tables of
  fixed size; surprise = -log of the smoothed probability of the observed bin.
* ``burst``: event-level suppression of recurring bursts on any score series: an
  event is a run of scores above ``e``; a new score not above the ``k``-th
  largest event peak of the last ``D`` days is damped.
* combinations with SpikeLevel's score (odds add, weights picked by CV).

Surprises are mapped to [0, 1] like SpikeLevel does: log1p(surprise) over the
largest of log1p(floor) and its decaying peak (fed after a burn-in), ratio r,
score r^4 / (1 + r^4).

    python utils/cpd_proto.py --data $NAB/data --exp bocpd1
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import math  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy.special import gammaln, stdtr  # noqa: E402

from skyline.analysis.algorithms.spike_level import SpikeLevel, SpikeLevelParams  # noqa: E402
from skyline.analysis.algorithms.stepping import score_points  # noqa: E402
from skyline.analysis.nab import crossval, runner, scoring  # noqa: E402

CACHE = Path(os.environ.get("CPD_CACHE", "/tmp/acc-cpd"))

# --- faster scoring: row values depend only on the file layout, cache them ---
_ROW_CACHE: dict = {}
_orig_row_value = scoring.FileCase.row_value


def _cached_row_value(self: scoring.FileCase, tp: float, fp: float) -> np.ndarray:
    key = (id(self.position), tp, fp)
    if key not in _ROW_CACHE:
        _ROW_CACHE[key] = (self.position, _orig_row_value(self, tp, fp))
    return _ROW_CACHE[key][1]


scoring.FileCase.row_value = _cached_row_value  # type: ignore[method-assign]


class Corpus:
    def __init__(self, data: Path) -> None:
        self.windows = runner.load_windows(runner.default_labels(data))
        self.series = [runner.read_series(data, n) for n in runner.corpus_files(data)]
        self.base = [scoring.prepare(s.name, s.timestamps, np.zeros(len(s.values)),
                                     self.windows.get(s.name, [])) for s in self.series]  # fmt: skip
        self.n_windows = sum(c.n_windows for c in self.base)

    def cases(self, scores: list[np.ndarray]) -> list[scoring.FileCase]:
        out = []
        for c, s in zip(self.base, scores, strict=True):
            clean = np.nan_to_num(np.asarray(s, float), nan=0.0, posinf=1.0, neginf=0.0)
            out.append(dataclasses.replace(c, scores=clean))
        return out


def spike_level(corpus: Corpus, overrides: dict | None = None) -> list[np.ndarray]:
    key = CACHE / f"spike_{sorted((overrides or {}).items())!r}.pkl".replace(" ", "")
    if key.exists():
        return pickle.loads(key.read_bytes())
    det = SpikeLevel(SpikeLevelParams(**(overrides or {})))
    st = det.new_state(len(corpus.series))
    out = score_points(det, st, [s.timestamps for s in corpus.series],
                       [s.values for s in corpus.series])  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    key.write_bytes(pickle.dumps(out))
    return out


# ------------------------------------------------------------------ lockstep
def lockstep(corpus: Corpus, init, step, values=None) -> list[np.ndarray]:
    """Step every file together; ``step(state, rows, v) -> features (len(rows), F)``."""
    src = values if values is not None else [s.values for s in corpus.series]
    vals = [np.nan_to_num(v, nan=0.0) for v in src]
    lens = np.array([len(v) for v in vals])
    m, n = len(vals), int(lens.max())
    mat = np.zeros((m, n))
    for i, v in enumerate(vals):
        mat[i, : len(v)] = v
    st = init(m)
    feats = None
    for k in range(n):
        rows = np.nonzero(lens > k)[0]
        f = step(st, rows, mat[rows, k])
        if feats is None:
            feats = np.full((m, n, f.shape[1]), np.nan)
        feats[rows, k] = f
    assert feats is not None
    return [feats[i, : lens[i]] for i in range(m)]


# --------------------------------------------------------------------- BOCPD
def bocpd_init(R: int):
    def init(m: int) -> dict:
        lw = np.full((m, R), -np.inf)
        lw[:, 0] = 0.0
        z = np.zeros((m, R))
        return {"lw": lw, "mu": z.copy(), "k": z + 1.0, "a": z + 1.0, "b": z + 1.0,
                "n": np.zeros(m), "mean": np.zeros(m), "absdiff": np.zeros(m),
                "prev": np.zeros(m)}  # fmt: skip

    return init


def bocpd_step(lam: float, k0: float, a0: float, cap: float, short: int, rate: float):
    logh, log1mh = math.log(1.0 / lam), math.log1p(-1.0 / lam)

    def step(st: dict, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = st["n"][rows]
        mean, ad, prev = st["mean"][rows], st["absdiff"][rows], st["prev"][rows]
        # prior of a new run: centred on the running mean, scale from the running
        # mean absolute first difference (noise level), never zero
        alpha_ = max(rate, 1.0 / (n.max() + 1.0)) if len(n) else rate
        sig = np.maximum(ad * 1.2533 / math.sqrt(2.0), 1e-6 * (1.0 + np.abs(mean)))
        sig = np.where(n < 2, 1.0 + np.abs(x), sig)
        mu0, b0 = mean, a0 * sig**2
        lw, mu, kk, aa, bb = (st[c][rows] for c in ("lw", "mu", "k", "a", "b"))
        df = 2.0 * aa
        scale = np.sqrt(bb * (kk + 1.0) / (aa * kk))
        t = (x[:, None] - mu) / scale
        logpdf = (gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(df * math.pi)
                  - np.log(scale) - (df + 1) / 2 * np.log1p(t * t / df))  # fmt: skip
        tail = 2.0 * stdtr(df, -np.abs(t))
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        p_tail = np.clip((w * tail).sum(axis=1), 1e-300, 1.0)
        pred_ll = np.log(
            np.clip((w * np.exp(np.clip(logpdf, -700, 700))).sum(axis=1), 1e-300, None)
        )
        # run-length posterior update
        j = lw + logpdf
        cp = np.logaddexp.reduce(j, axis=1) + logh
        grow = j + log1mh
        new_lw = np.empty_like(lw)
        new_lw[:, 0] = cp
        new_lw[:, 1:] = grow[:, :-1]
        new_lw[:, -1] = np.logaddexp(grow[:, -2], grow[:, -1])
        new_lw -= np.logaddexp.reduce(new_lw, axis=1, keepdims=True)
        # parameter update, then shift; the last slot keeps the longest run's params
        k1 = kk + 1.0
        mu1 = (kk * mu + x[:, None]) / k1
        a1 = aa + 0.5
        b1 = bb + kk * (x[:, None] - mu) ** 2 / (2.0 * k1)
        # forgetting: cap the effective sample size
        f = np.minimum(1.0, cap / k1)
        k1, a1, b1 = k1 * f, np.maximum(a0, a1 * f), b1 * f
        keep_last = np.isfinite(grow[:, -1]) & (grow[:, -1] >= grow[:, -2])
        for name, upd, _pri in (("mu", mu1, mu0), ("k", k1, None), ("a", a1, None), ("b", b1, b0)):
            arr = np.empty_like(upd)
            arr[:, 1:] = upd[:, :-1]
            arr[:, -1] = np.where(keep_last, upd[:, -1], upd[:, -2])
            if name == "mu":
                arr[:, 0] = mu0
            elif name == "k":
                arr[:, 0] = k0
            elif name == "a":
                arr[:, 0] = a0
            else:
                arr[:, 0] = b0
            st[name][rows] = arr
        st["lw"][rows] = new_lw
        short_mass = np.exp(new_lw[:, :short]).sum(axis=1)
        exp_rl = (np.exp(new_lw) * np.arange(new_lw.shape[1])).sum(axis=1)
        # running stats for the prior
        st["mean"][rows] = np.where(n == 0, x, mean + alpha_ * (x - mean))
        st["absdiff"][rows] = np.where(n == 0, 0.0, np.where(n == 1, np.abs(x - prev),
                                       ad + alpha_ * (np.abs(x - prev) - ad)))  # fmt: skip
        st["prev"][rows] = x
        st["n"][rows] = n + 1
        warm = n < 10
        s_tail = np.where(warm, 0.0, -np.log(p_tail))
        s_pred = np.where(warm, 0.0, -pred_ll)
        return np.stack([s_tail, np.where(warm, 0.0, short_mass), s_pred, exp_rl], axis=1)

    return step


def bocpd(corpus: Corpus, R=100, lam=250.0, k0=0.1, a0=1.0, cap=300.0, short=5,
          rate=1.0 / 500, values=None, tag="") -> list[np.ndarray]:  # fmt: skip
    key = CACHE / f"bocpd{tag}_{R}_{lam}_{k0}_{a0}_{cap}_{short}_{rate:.5f}.pkl"
    if key.exists():
        return pickle.loads(key.read_bytes())
    t0 = time.time()
    out = lockstep(corpus, bocpd_init(R), bocpd_step(lam, k0, a0, cap, short, rate), values)
    print(f"  bocpd R={R} lam={lam} k0={k0} a0={a0} cap={cap}: {time.time() - t0:.0f} s",
          flush=True)  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    key.write_bytes(pickle.dumps(out))
    return out


def deseasonalised(corpus: Corpus, days=3, local=5) -> list[np.ndarray]:
    """Causal residual of each value: minus the median of the values nearest the
    same time on the previous ``days`` days (at least 2 found within 1 % of a day),
    else minus the median of the last ``local`` values."""
    out = []
    for s in corpus.series:
        t, v = s.timestamps, np.nan_to_num(s.values, nan=0.0)
        r = np.zeros(len(v))
        for i in range(len(v)):
            past = []
            for d in range(1, days + 1):
                j = int(np.searchsorted(t, t[i] - d * 86400.0, side="left"))
                if j < i and abs(t[j] - (t[i] - d * 86400.0)) <= 864.0:
                    past.append(v[j])
            if len(past) >= 2:
                r[i] = v[i] - float(np.median(past))
            elif i > 0:
                r[i] = v[i] - float(np.median(v[max(0, i - local) : i]))
        out.append(r)
    return out


# ------------------------------------------------------------ context learner
def ctx_features(corpus: Corpus, B=12, L=3, H=4096, decay=0.999, alpha=0.5) -> list[np.ndarray]:
    """Surprise of each value's bin given the previous L bins (hashed counts).

    Range: running min/max learned so far, widened by 10 %; a value outside the
    range gets the edge bin and full surprise of a never-seen bin.
    """
    key = CACHE / f"ctx_{B}_{L}_{H}_{decay}_{alpha}.pkl"
    if key.exists():
        return pickle.loads(key.read_bytes())
    out = []
    mult = np.array([(B + 1) ** i for i in range(L)], dtype=np.int64)
    for s in corpus.series:
        v = np.nan_to_num(s.values, nan=0.0)
        pair = np.zeros(H)  # counts of (context, bin), hashed
        ctxc = np.zeros(H)  # counts of context
        lo, hi = math.inf, -math.inf
        hist: list[int] = []
        feats = np.zeros((len(v), 2))
        scale = 1.0
        for i, x in enumerate(v):
            if i >= 10 and hi > lo:
                span = hi - lo
                b = int(np.clip((x - (lo - 0.1 * span)) / (1.2 * span) * B, 0, B - 1))
                outside = x < lo - 0.1 * span or x > hi + 0.1 * span
            else:
                b, outside = 0, False
            if len(hist) == L:
                c = int((np.array(hist) * mult).sum()) * 2654435761 % H
                pc = (c * 31 + b + 1) * 2246822519 % H
                p = (pair[pc] / scale + alpha / B) / (ctxc[c] / scale + alpha)
                feats[i, 0] = (
                    -math.log(p)
                    if not outside
                    else -math.log(alpha / B / (ctxc[c] / scale + alpha))
                )
                feats[i, 1] = 1.0 if pair[pc] / scale < 0.5 else 0.0
                pair[pc] += scale
                ctxc[c] += scale
            scale /= decay
            if scale > 1e100:
                pair /= scale
                ctxc /= scale
                scale = 1.0
            lo, hi = min(lo, x), max(hi, x)
            hist.append(b)
            if len(hist) > L:
                hist.pop(0)
        feats[:10] = 0.0
        out.append(feats)
    CACHE.mkdir(parents=True, exist_ok=True)
    key.write_bytes(pickle.dumps(out))
    return out


# ------------------------------------------------------------------ mapping
def peak_ratio(s: np.ndarray, floor=4.0, half_life=1000.0, burn_in=400, log=True) -> np.ndarray:
    """Causal ratio of a surprise to max(floor, its decaying peak)."""
    g = np.log1p(np.maximum(s, 0.0)) if log else np.maximum(s, 0.0)
    f = math.log1p(floor) if log else floor
    d = 0.5 ** (1.0 / half_life)
    peak = 0.0
    r = np.zeros(len(g))
    for i, x in enumerate(g):
        r[i] = x / max(f, peak)
        peak *= d
        if i >= burn_in and x > peak:
            peak = x
    return r


def odds_score(*ratios: np.ndarray, weights=None, p=4.0) -> np.ndarray:
    o = sum((w if weights else 1.0) * np.power(np.maximum(r, 0), p)
            for w, r in zip(weights or [1.0] * len(ratios), ratios, strict=True))  # fmt: skip
    return o / (1.0 + o)


def repeat_damp(s: np.ndarray, window=60, damping=0.5) -> np.ndarray:
    out = s.copy()
    for i in range(1, len(s)):
        if s[i] <= s[max(0, i - window) : i].max():
            out[i] = s[i] * damping
    return out


def burst_suppress(s: np.ndarray, ts: np.ndarray, e=0.5, k=2, days=3.0, damping=0.5) -> np.ndarray:
    """Damp a score not above the k-th largest event peak of the last ``days``."""
    out = s.copy()
    peaks: list[tuple[float, float]] = []  # (end time, peak) of closed events
    cur = None
    horizon = days * 86400.0
    for i, x in enumerate(s):
        t = ts[i]
        peaks = [p for p in peaks if p[0] >= t - horizon]
        if len(peaks) >= k:
            ref = sorted((p[1] for p in peaks), reverse=True)[k - 1]
            if x <= ref:
                out[i] = x * damping
        if x > e:
            cur = x if cur is None else max(cur, x)
        elif cur is not None:
            peaks.append((t, cur))
            cur = None
    return out


# -------------------------------------------------------------------- report
def evaluate(corpus: Corpus, variants: dict[str, list[np.ndarray]], pool_extra=None,
             log=None) -> dict:  # fmt: skip
    allcases = {name: corpus.cases(sc) for name, sc in variants.items()}
    res = {}
    for name, cases in allcases.items():
        row = []
        for prof in scoring.PROFILES.values():
            thr, raw = scoring.optimise_threshold(cases, prof)
            cv = crossval.leave_one_category_out({name: cases}, prof)["score"]
            row.append((scoring.normalise(raw, corpus.n_windows, prof), cv, thr))
        res[name] = row
        line = (f"{name:60s} in " + " / ".join(f"{a:.1f}" for a, _, _ in row)
                + "  CV(thr) " + " / ".join(f"{b:.1f}" for _, b, _ in row)
                + f"  thr {row[0][2]:.3f}")  # fmt: skip
        print(line, flush=True)
        if log:
            with open(log, "a") as fh:
                fh.write(line + "\n")
    if len(allcases) > 1:
        sel = []
        for pname, prof in scoring.PROFILES.items():
            r = crossval.leave_one_category_out(allcases, prof)
            sel.append(r["score"])
            picks = ", ".join(f"{f['held_out'][:8]}:{f['variant'][:30]}" for f in r["folds"])
            print(f"   selection CV {pname}: {r['score']:.1f}  [{picks}]", flush=True)
        line = "SELECTION CV over pool: " + " / ".join(f"{x:.1f}" for x in sel)
        print(line, flush=True)
        if log:
            with open(log, "a") as fh:
                fh.write(line + f"  (pool of {len(allcases)})\n")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="DIR/<category>/<file>.csv")
    p.add_argument("--exp", default="base")
    p.add_argument("--log", default=str(CACHE / "log.txt"))
    a = p.parse_args(argv)
    corpus = Corpus(a.data)
    import cpd_experiments as ex  # noqa: PLC0415

    getattr(ex, a.exp)(corpus, a.log)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
