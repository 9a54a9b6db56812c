"""The storage benchmark's steady state of the sealed format (``utils/bench/store.py
--only steady``): realistic metrics appended minute by minute and sealed by roomba
passes as horizon runs them, their memory per point, and the read path on them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
from store_timing import (
    DECODE_SAMPLE,
    PREFIX,
    STEP,
    TARGET_READ,
    Rate,
    best_of,
    delete_prefix,
    make_series,
    metric_name,
)

from skyline.store.keys import RedisKeys
from skyline.store.sealed import is_sealed, read_header, unseal
from skyline.store.timeseries import TimeSeriesStore, encode, header

ROOT = Path(__file__).resolve().parents[2]


KINDS = ("nab", "counter", "gauge", "noise")
NAB_DIR = ROOT.parent / "shared" / "nab" / "data"


def nab_values(points: int) -> list[np.ndarray]:
    """Every NAB series long enough, first ``points`` values (none without the data)."""
    out = []
    for path in sorted(NAB_DIR.glob("*/*.csv")):
        lines = path.read_text().splitlines()[1:]
        if len(lines) >= points:
            out.append(np.array([float(line.rsplit(",", 1)[1]) for line in lines[:points]]))
    return out


def realistic_values(kind: str, index: int, points: int, nab: list[np.ndarray],
                     seed_: int) -> np.ndarray:  # fmt: skip
    """Values of one metric of ``kind``: a NAB series (cycled), a counter (cumulative
    Poisson increments), a gauge with 0-3 decimals, or full-precision noise."""
    rng = np.random.default_rng([seed_, index])
    if kind == "nab" and nab:
        return nab[index % len(nab)][:points]
    if kind == "counter":
        return np.cumsum(rng.poisson(rng.uniform(1, 5000), points)).astype(np.float64)
    if kind in ("gauge", "nab"):
        level, decimals = 10.0 ** rng.uniform(-1, 4), int(rng.integers(0, 4))
        cycle = 1 + 0.2 * np.sin(np.arange(points) * 2 * np.pi / 1440 + rng.uniform(0, 6))
        return np.round(level * cycle * (1 + rng.normal(0, 0.02, points)), decimals)
    return make_series(seed_, index, points, 1 << 30)[1]


@dataclass
class Steady:
    live: dict[str, list[float]]  # kind -> MEMORY USAGE bytes/point at each sample
    strlen: dict[str, float]
    sealed: dict[str, float]  # kind -> block bytes per sealed point
    rewritten: int
    read_many: Rate
    read_since: Rate
    read_many_records: Rate  # the same points as records only (the format before)
    verified: bool


def steady_state(r: redis.Redis, args: argparse.Namespace, end: int) -> Steady:
    """``--steady-metrics`` metrics (a quarter of each kind) get a day of minutely
    points appended raw and sealed by one roomba pass, then ``--steady-hours`` hours
    of one point a minute, each minute one append_batch and one roomba pass
    (``trim_many``, 24 h window, 600 s grace, as horizon runs it).  MEMORY USAGE is
    sampled every minute of the last hour (a rewrite is due about every 10 minutes, so
    the samples see series at every age since their rewrite).  Then the read path on
    those series, and ``read_many`` of the same points stored as records only (the
    format before sealed blocks), for comparison in the same conditions."""
    n, points = args.steady_metrics, args.points
    nab = nab_values(points + 60 * args.steady_hours)
    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    metrics = [f"{kinds[i]}.{metric_name(i)}" for i in range(n)]
    total = points + 60 * args.steady_hours
    values = [realistic_values(k, i, total, nab, args.seed) for i, k in enumerate(kinds)]
    store = TimeSeriesStore(r, RedisKeys(f"{PREFIX}steady:"))
    start = end - STEP * total
    t0 = start + STEP * np.arange(points, dtype=np.int64)
    for i, m in enumerate(metrics):  # a day appended raw, then sealed by a pass
        r.append(store.keys.series(m), encode(t0, values[i][:points]))
    r.sadd(store.keys.metrics(), *metrics)
    now = int(t0[-1])
    rewritten = store.trim_many(metrics, now, 86400, 600, 86400)["rewritten"]
    live: dict[str, list[float]] = {k: [] for k in (*KINDS, "realistic", "all")}
    ids = np.arange(n)
    for minute in range(60 * args.steady_hours):
        now += STEP
        v = np.array([values[i][points + minute] for i in range(n)])
        store.append_batch(ids, np.full(n, now), v, metrics, announce=False)
        rewritten += store.trim_many(metrics, now, 86400, 600, 86400).get("rewritten", 0)
        if minute >= 60 * args.steady_hours - 60:  # every minute of the last hour
            for kind, per_point in _memory_per_point(r, store, metrics, kinds).items():
                live[kind].append(per_point)
    strlen, sealed = _sizes(r, store, metrics, kinds)
    verified = _verify(store, metrics, values, now, points)
    few = metrics[: min(n, DECODE_SAMPLE)]
    s, reps = args.seconds, args.reps
    read_many = best_of(lambda: len(store.read_many(few)), r, s, reps)
    cursors = {m: c for m, _, c, _ in store.read_since_many(dict.fromkeys(metrics))}
    clock = [now]

    def since() -> int:
        clock[0] += STEP
        store.append_batch(ids, np.full(n, clock[0]), np.ones(n), metrics, announce=False)
        got = 0
        for m, rec, c, _ in store.read_since_many(cursors):
            cursors[m] = c
            got += len(rec) > 0
        return got

    read_since = best_of(since, r, s, reps)
    old = TimeSeriesStore(r, RedisKeys(f"{PREFIX}steady-records:"))
    pipe = r.pipeline(transaction=False)
    for m, series in store.read_many(few).items():
        pipe.set(old.keys.series(m), header(1) + encode(series.timestamps, series.values))
    pipe.execute()
    records = best_of(lambda: len(old.read_many(few)), r, s, reps)
    delete_prefix(r, f"{PREFIX}steady")
    return Steady(live, strlen, sealed, rewritten, read_many, read_since, records, verified)


def _by_kind(
    kinds: list[str], numbers: Sequence[float], counts: Sequence[float]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in (*KINDS, "realistic", "all"):
        pick = [i for i, k in enumerate(kinds)
                if kind == "all" or k == kind or (kind == "realistic" and k != "noise")]  # fmt: skip
        points = sum(counts[i] for i in pick)
        out[kind] = sum(numbers[i] for i in pick) / points if points else 0.0
    return out


def _memory_per_point(r: redis.Redis, store: TimeSeriesStore, metrics: list[str],
                      kinds: list[str]) -> dict[str, float]:  # fmt: skip
    pipe = r.pipeline(transaction=False)
    for m in metrics:
        pipe.memory_usage(store.keys.series(m), samples=0)
    usage = pipe.execute()
    counts = [len(s) for s in store.read_many(metrics).values()]
    return _by_kind(kinds, usage, counts)


def _sizes(r: redis.Redis, store: TimeSeriesStore, metrics: list[str],
           kinds: list[str]) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """STRLEN per point, and sealed block bytes per sealed point."""
    raws = store.read_raw_many(metrics)
    counts = [len(s) for s in store.read_many(metrics).values()]
    blocks, sealed_points = [], []
    for raw in raws:
        head = read_header(raw or b"") if is_sealed(raw or b"") else None
        blocks.append(head.block if head else 0)
        sealed_points.append(len(unseal(raw or b"", head)[0]) if head else 0)
    return (_by_kind(kinds, [len(x or b"") for x in raws], counts),
            _by_kind(kinds, blocks, sealed_points))  # fmt: skip


def _verify(store: TimeSeriesStore, metrics: list[str], values: list[np.ndarray], now: int,
            points: int) -> bool:  # fmt: skip
    """Every stored series is exactly the last day of what was appended, bit for bit."""
    got = store.read_many(metrics)
    for i, m in enumerate(metrics):
        s = got[m]
        want_t = np.arange(now - STEP * (len(values[i]) - 1), now + 1, STEP)
        if not len(s) or not (
            s.timestamps[0] == want_t[0] or now - 86400 - 660 <= s.timestamps[0] <= now - 86400
        ):
            return False  # all, or the window and at most the grace and a pass more
        keep = want_t >= s.timestamps[0]
        if not (np.array_equal(s.timestamps, want_t[keep])
                and np.array_equal(s.values.view(np.int64), values[i][keep].view(np.int64))):  # fmt: skip
            return False
    return True


def steady_headline(st: Steady, args: argparse.Namespace) -> dict[str, object]:
    h: dict[str, object] = {
        "steady_metrics": args.steady_metrics,
        "steady_hours": args.steady_hours,
        "steady_rewrites": st.rewritten,
        "steady_verified_identical": st.verified,
        "steady_read_many_metrics_per_s": round(st.read_many.wall),
        "steady_read_many_client_cpu_us_per_metric": round(1e6 / st.read_many.cpu, 2),
        "steady_read_many_redis_cpu_us_per_metric": round(st.read_many.server_us, 2),
        "steady_read_since_many_metrics_per_s": round(st.read_since.wall),
        "steady_read_many_records_metrics_per_s": round(st.read_many_records.wall),
        "steady_read_many_records_client_cpu_us_per_metric": round(
            1e6 / st.read_many_records.cpu, 2
        ),
        "target_steady_live_bytes_per_point": 12,
        "target_sealed_bytes_per_point": 4,
    }
    for kind, samples in st.live.items():
        h[f"steady_live_bytes_per_point_{kind}_mean"] = round(float(np.mean(samples)), 2)
        h[f"steady_live_bytes_per_point_{kind}_max"] = round(float(np.max(samples)), 2)
        h[f"steady_strlen_bytes_per_point_{kind}"] = round(st.strlen[kind], 2)
        h[f"sealed_bytes_per_point_{kind}"] = round(st.sealed[kind], 2)
    return h


def steady_table(st: Steady, args: argparse.Namespace, env: dict[str, object]) -> str:
    lines = [
        "",
        f"Sealed format, steady state: {args.steady_metrics} metrics (NAB, counters, gauges with "
        f"decimals, full-precision noise: a quarter each), a day sealed then "
        f"{args.steady_hours} h of one point a minute with a roomba pass each minute "
        f"({st.rewritten} rewrites); {env.get('transport')}, Redis {env.get('redis_version')}; "
        f"data identical to what was appended: {st.verified}",
        "",
        f"{'bytes per point':<34}" + "".join(f"{k:>11}" for k in (*KINDS, "realistic", "all")),
    ]
    rows = [
        ("live, MEMORY USAGE, mean", {k: float(np.mean(v)) for k, v in st.live.items()}),
        ("live, MEMORY USAGE, max", {k: float(np.max(v)) for k, v in st.live.items()}),
        ("live, STRLEN", st.strlen),
        ("sealed block", st.sealed),
    ]
    for label, d in rows:
        lines.append(
            f"{label:<34}" + "".join(f"{d[k]:>11.2f}" for k in (*KINDS, "realistic", "all"))
        )
    lines += [
        "",
        f"TimeSeriesStore.read_many({min(args.steady_metrics, DECODE_SAMPLE)}) metrics/s: "
        f"{st.read_many.wall:,.0f} (client CPU {1e6 / st.read_many.cpu:.1f} us/metric, Redis "
        f"{st.read_many.server_us:.1f} us/metric); read_since_many, 1 new point: "
        f"{st.read_since.wall:,.0f} metrics/s",
        f"the same points as records only (before sealed blocks): read_many "
        f"{st.read_many_records.wall:,.0f} metrics/s (client CPU "
        f"{1e6 / st.read_many_records.cpu:.1f} us/metric)",
        f"targets: live <= 12 ({'met' if st.live['realistic'] and max(st.live['realistic']) <= 12 else 'NOT met'} "
        f"on realistic metrics), sealed <= 4 "
        f"({'met' if st.sealed['realistic'] <= 4 else 'NOT met'}), read_many >= {TARGET_READ:,} "
        f"({'met' if st.read_many.wall >= TARGET_READ else 'NOT met'})",
    ]
    return "\n".join(lines)
