"""Experiments of ``utils/cpd_proto.py`` (one function per ``--exp``)."""

from __future__ import annotations

import numpy as np
from cpd_proto import (
    Corpus,
    bocpd,
    burst_suppress,
    ctx_features,
    evaluate,
    odds_score,
    peak_ratio,
    repeat_damp,
    spike_level,
)
from nab_variants import SELECTION_VARIANTS


def base(c: Corpus, log: str) -> None:
    evaluate(c, {"spike_level default": spike_level(c)}, log=log)


def _bocpd_score(feats, col=0, floor=4.0, hl=1000.0, burn=400, damp=True):
    out = []
    for f in feats:
        r = peak_ratio(f[:, col], floor=floor, half_life=hl, burn_in=burn)
        s = odds_score(r)
        out.append(repeat_damp(s) if damp else s)
    return out


def bocpd1(c: Corpus, log: str) -> None:
    v = {}
    for lam, cap in ((250.0, 300.0), (1000.0, 300.0), (250.0, 1000.0)):
        f = bocpd(c, R=100, lam=lam, cap=cap)
        v[f"bocpd tail lam{lam:.0f} cap{cap:.0f}"] = _bocpd_score(f, 0)
        v[f"bocpd pred lam{lam:.0f} cap{cap:.0f}"] = _bocpd_score(f, 2)
    evaluate(c, v, log=log)


def ctx1(c: Corpus, log: str) -> None:
    v = {}
    for B, L in ((12, 3), (8, 4), (20, 2)):
        f = ctx_features(c, B=B, L=L)
        v[f"ctx B{B} L{L}"] = [repeat_damp(odds_score(peak_ratio(x[:, 0], floor=2.0))) for x in f]
    evaluate(c, v, log=log)


def combo1(c: Corpus, log: str) -> None:
    sl = spike_level(c)
    f = bocpd(c, R=100, lam=250.0, cap=300.0)
    rb = [peak_ratio(x[:, 0]) for x in f]
    v = {"spike_level default": sl}
    for w in (0.1, 0.3, 1.0):
        out = []
        for s, r in zip(sl, rb, strict=True):
            o = s / np.maximum(1e-9, 1 - s) + w * r**4
            out.append(repeat_damp(o / (1 + o)))
        v[f"sl+bocpd w{w}"] = out
    evaluate(c, v, log=log)


def _gate(sl_raw, other, q, damp=True):
    out = []
    for s, r in zip(sl_raw, other, strict=True):
        o = s / np.maximum(1e-9, 1 - s) * np.power(np.maximum(r, 1e-6), q)
        x = o / (1 + o)
        out.append(repeat_damp(x) if damp else x)
    return out


def combo2(c: Corpus, log: str) -> None:
    raw = spike_level(c, {"repeat_damping": 1.0})
    fb = bocpd(c, R=100, lam=250.0, cap=300.0)
    rb = [peak_ratio(x[:, 0]) for x in fb]
    fc = ctx_features(c, B=12, L=3)
    rc = [peak_ratio(x[:, 0], floor=2.0) for x in fc]
    v = {"spike_level default": spike_level(c),
         "sl undamped then damp": [repeat_damp(s) for s in raw]}  # fmt: skip
    for q in (0.5, 1.0, 2.0):
        v[f"sl gated by bocpd^{q}"] = _gate(raw, rb, q)
        v[f"sl gated by ctx^{q}"] = _gate(raw, rc, q)
    evaluate(c, v, log=log)


def diag(c: Corpus, log: str) -> None:
    sl = spike_level(c)
    fb = bocpd(c, R=100, lam=250.0, cap=300.0)
    fc = ctx_features(c, B=12, L=3)
    sb = _bocpd_score(fb, 0)
    sc = [repeat_damp(odds_score(peak_ratio(x[:, 0], floor=2.0))) for x in fc]
    for case, s, b, x in zip(c.base, sl, sb, sc, strict=True):
        p = case.probation
        out = (case.window_of_row < 0) & (np.arange(len(s)) >= p)
        fps = int((s[out] >= 0.723).sum())
        line = []
        for _w, (lo, hi) in enumerate(case.window_bounds):
            hit = "TP" if s[lo : hi + 1].max() >= 0.723 else "FN"
            line.append(
                f"{hit} sl{s[lo : hi + 1].max():.2f} b{b[lo : hi + 1].max():.2f} c{x[lo : hi + 1].max():.2f}"
            )

        def q(a, out=out):
            return np.quantile(a[out], 0.999) if out.any() else 0

        print(
            f"{case.name[:45]:45s} fp{fps:3d} out99.9 sl{q(s):.2f} b{q(b):.2f} c{q(x):.2f} | "
            + "; ".join(line)
        )


def bocpd2(c: Corpus, log: str) -> None:
    v = {}
    f = bocpd(c, R=100, lam=250.0, cap=300.0)
    for floor in (10.0, 20.0):
        v[f"bocpd tail lam250 cap300 floor{floor:.0f}"] = _bocpd_score(f, 0, floor=floor)
    v["bocpd cpmass(r<5) lam250 cap300"] = [
        repeat_damp(odds_score(peak_ratio(x[:, 1], floor=0.05, log=False))) for x in f
    ]
    for kw in ({"k0": 1.0}, {"a0": 3.0}, {"cap": 100.0}, {"R": 50, "lam": 100.0},
               {"rate": 1.0 / 100}):  # fmt: skip
        args = {"R": 100, "lam": 250.0, "cap": 300.0} | kw
        fk = bocpd(c, **args)
        v[f"bocpd tail {kw}"] = _bocpd_score(fk, 0)
        v[f"bocpd tail {kw} floor10"] = _bocpd_score(fk, 0, floor=10.0)
    evaluate(c, v, log=log)


def _persist(s: np.ndarray, a: float, lag: int = 1) -> np.ndarray:
    """max(a * s_t, min(s_t .. s_{t-lag})): an isolated high row is scaled by a."""
    out = a * s
    m = s.copy()
    for j in range(1, lag + 1):
        prev = np.concatenate([np.zeros(j), s[:-j]])
        m = np.minimum(m, prev)
    return np.maximum(out, m)


def persist1(c: Corpus, log: str) -> None:
    raw = spike_level(c, {"repeat_damping": 1.0})
    v = {"spike_level default": spike_level(c)}
    for a in (0.8, 0.9, 0.95):
        v[f"persist a{a}"] = [repeat_damp(_persist(np.nan_to_num(s), a)) for s in raw]
    v["persist a0.9 lag2"] = [repeat_damp(_persist(np.nan_to_num(s), 0.9, 2)) for s in raw]
    evaluate(c, v, log=log)


def _sl_values(c: Corpus, vals: list[np.ndarray], tag: str) -> list[np.ndarray]:
    import pickle

    from cpd_proto import CACHE, SpikeLevel, score_points

    key = CACHE / f"slv_{tag}.pkl"
    if key.exists():
        return pickle.loads(key.read_bytes())
    det = SpikeLevel()
    st = det.new_state(len(vals))
    out = score_points(det, st, [s.timestamps for s in c.series], vals)
    key.write_bytes(pickle.dumps(out))
    return out


def _per_cat(c: Corpus, scores, thr=0.723):
    from skyline.analysis.nab import scoring

    cases = c.cases(scores)
    prof = scoring.PROFILES["standard"]
    cats: dict = {}
    for cs in cases:
        r = scoring.score_file(cs, thr, prof)
        k = cs.name.split("/")[0]
        a = cats.setdefault(k, [0.0, 0, 0, 0])
        a[0] += r["raw"]
        a[1] += r["tp"]
        a[2] += r["fn"]
        a[3] += r["fp"]  # noqa: E702
    return {k: (round(a[0], 2), a[1], a[2], a[3]) for k, a in cats.items()}


def logv(c: Corpus, log: str) -> None:
    vals = [np.log1p(np.maximum(s.values, 0)) for s in c.series]
    lg = _sl_values(c, vals, "log1p")
    print("default", _per_cat(c, spike_level(c)))
    print("log1p  ", _per_cat(c, lg))
    for s in c.series:
        x = s.values[:400]
        x = x[np.isfinite(x)]
        med = np.median(x)
        mad = np.median(np.abs(x - med)) + 1e-9
        q = (np.quantile(x, 0.99) - med) / mad
        sk = float(((x - x.mean()) ** 3).mean() / (x.std() ** 3 + 1e-12))
        print(f"{s.name[:45]:45s} min{x.min():9.3g} q99/mad {q:7.1f} skew {sk:6.2f}")
    evaluate(c, {"sl log1p all": lg}, log=log)


def _calib(s: np.ndarray, bins=100, decay=0.999, prior=1.0) -> np.ndarray:
    """Causal -log tail probability of each score among its own past (decaying histogram)."""
    h = np.zeros(bins)
    total = 0.0
    out = np.zeros(len(s))
    x = np.clip(np.nan_to_num(s), 0.0, 1.0 - 1e-12)
    idx = (x * bins).astype(int)
    for i, b in enumerate(idx):
        above = h[b:].sum()
        out[i] = -np.log((above + prior) / (total + prior))
        h *= decay
        total = total * decay + 1.0
        h[b] += 1.0
    return out


def calib1(c: Corpus, log: str) -> None:
    sl = spike_level(c)
    fb = bocpd(c, R=100, lam=250.0, cap=300.0)
    sb = _bocpd_score(fb, 0, damp=False)
    fc = ctx_features(c, B=12, L=3)
    sc = [odds_score(peak_ratio(x[:, 0], floor=2.0)) for x in fc]
    ps = [_calib(s) for s in sl]
    pb = [_calib(s) for s in sb]
    pc = [_calib(s) for s in sc]
    v = {"spike_level default": sl}
    for w in (0.0, 0.25, 0.5):
        for name, other in (("bocpd", pb), ("ctx", pc)):
            if w == 0.0 and name == "ctx":
                continue
            out = []
            for a, b in zip(ps, other, strict=True):
                z = a + w * b
                out.append(repeat_damp(odds_score(peak_ratio(z, floor=4.0))))
            v[f"calibrated sl + {w} {name}"] = out
    evaluate(c, v, log=log)


def _selection(c: Corpus, pool: dict, label: str, log: str) -> None:
    from skyline.analysis.nab import crossval, scoring

    cases = {k: c.cases(v) for k, v in pool.items()}
    res = []
    for pname, prof in scoring.PROFILES.items():
        r = crossval.leave_one_category_out(cases, prof)
        res.append(r["score"])
        print(
            f"  {label} {pname}: {r['score']:.1f} "
            + ", ".join(f"{f['held_out'][:8]}:{f['variant'][:28]}" for f in r["folds"]),
            flush=True,
        )
    line = f"SELECTION CV {label} ({len(pool)} variants): " + " / ".join(f"{x:.1f}" for x in res)
    print(line, flush=True)
    with open(log, "a") as fh:
        fh.write(line + "\n")


BURST_GRID = [(k, d, 0.5, 0.5) for k in (1, 2, 3) for d in (1.0, 3.0)] + [
    (3, 3.0, 0.5, 0.75),
    (3, 3.0, 0.6, 0.5),
    (3, 2.0, 0.5, 0.5),
    (4, 3.0, 0.5, 0.5),
    (3, 5.0, 0.5, 0.5),
    (4, 5.0, 0.5, 0.5),
    (3, 3.0, 0.7, 0.5),
    (2, 2.0, 0.6, 0.75),
]  # (k, days, event level, damping): every burst variant tried


def _burst_pool(c: Corpus) -> dict:
    sl = spike_level(c)
    ts = [s.timestamps for s in c.series]
    return {f"burst k{k} d{d:.0f} e{e} x{x}": [burst_suppress(s, t, e=e, k=k, days=d, damping=x)
                                              for s, t in zip(sl, ts, strict=True)]
            for k, d, e, x in BURST_GRID}  # fmt: skip


def _persist_pool(c: Corpus) -> dict:
    raw = spike_level(c, {"repeat_damping": 1.0})
    out = {f"persist a{a}": [repeat_damp(_persist(np.nan_to_num(s), a)) for s in raw]
           for a in (0.8, 0.9, 0.95)}  # fmt: skip
    out["persist a0.9 lag2"] = [repeat_damp(_persist(np.nan_to_num(s), 0.9, 2)) for s in raw]
    return out


def burst2(c: Corpus, log: str) -> None:
    bp = _burst_pool(c)
    evaluate(c, {"spike_level default": spike_level(c)} | bp, log=log)


def team2(c: Corpus, log: str) -> None:
    pool = {repr(p): spike_level(c, p) for p in SELECTION_VARIANTS}
    bp = _burst_pool(c)
    _selection(c, {"{}": pool["{}"]} | bp, "default + all 14 burst variants", log)
    _selection(c, pool | bp | _persist_pool(c), "team pool + all burst and persist variants", log)


def bocpd3(c: Corpus, log: str) -> None:
    """BOCPD on a causal daily-seasonal residual instead of the raw values."""
    from cpd_proto import deseasonalised

    res = deseasonalised(c)
    raw = spike_level(c, {"repeat_damping": 1.0})
    v = {}
    for lam, cap in ((250.0, 300.0), (1000.0, 100.0)):
        f = bocpd(c, R=100, lam=lam, cap=cap, values=res, tag="res")
        v[f"bocpd on residual, tail lam{lam:.0f} cap{cap:.0f}"] = _bocpd_score(f, 0)
        rb = [peak_ratio(x[:, 0]) for x in f]
        v[f"sl + 0.1 bocpd-on-residual odds lam{lam:.0f} cap{cap:.0f}"] = [
            repeat_damp((o := s / np.maximum(1e-9, 1 - s) + 0.1 * r**4) / (1 + o))
            for s, r in zip([np.nan_to_num(x) for x in raw], rb, strict=True)
        ]
    evaluate(c, v, log=log)
