#!/usr/bin/env python
"""Analyzer benchmark: the classic sweep through the daemon's own code, against a
per-series baseline on the same series, in the same run, Redis read included.

Seeded synthetic metrics (numpy ``default_rng``): white noise, daily seasonality,
linear trends, monotonic counters (a third with a reset) and random walks, ~1 % with
a spike in the last points; ``--points`` points each (default 1,440 at a 60 s step,
the last one at the start of the run minus a per-metric jitter).  They are written
to Redis through ``TimeSeriesStore`` exactly as horizon stores them, and left as the
daemon finds them in production (``--state steady``, the default): roomba's rewrite
has sealed ``--points`` of them into a compressed block, and each metric has since
received 0 to (roomba_grace + roomba_interval) / 60 more points as raw records (seeded
per metric), so the series differ in length by up to that many points, as between two
roomba rewrites.  ``--state fresh`` leaves them all as raw records of one length, as
before a first roomba pass (the decode path is then one aligned array).

Timed (best of ``--reps``, every job timed once per rep in turn):

* ``sweep``: a real ``Analyzer`` (``--mode``, default classic; counter detection
  on) runs ``analyse_metrics`` over every metric in the daemon's sweep slices:
  ``TimeSeriesStore.read_many``, ``analyse``, the anomaly events handed on and the
  per-verdict counting -- everything the daemon does per pass;
* ``read_many`` and ``analyse`` alone, over the same slices (where the time goes);
* the baseline, on the first ``--per-series`` metrics, read from the same Redis:
  with ``--earthgecko DIR`` (a checkout of earthgecko Skyline's ``skyline/analyzer``
  directory, which this repository does not contain) its ``run_selected_algorithm``
  on each series, as ``[(timestamp, value), ...]`` after our counter conversion;
  without it our per-series ``run_ensemble`` (one series at a time, the same
  verdicts as earthgecko's ensemble: the same shape of work, but faster than
  earthgecko's code, so the ratio is the smaller one).  The output names the
  baseline used.

One process, one thread (``OPENBLAS_NUM_THREADS=1``).  Redis: an embedded server
in a temp dir, or ``--redis-url`` (only DB 12 of it is used and flushed).

    python utils/bench/analyzer.py [--metrics N] [--points 1440] [--per-series N]
        [--mode classic|default] [--state steady|fresh] [--earthgecko DIR] [--redis-url URL] [--reps 3] [--json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import redis  # noqa: E402
from benchkit import with_redis  # noqa: E402

from skyline.analysis.algorithms import (  # noqa: E402
    EnsembleOptions,
    is_counter,
    non_negative_derivative,
    run_ensemble,
)
from skyline.analysis.analyzer.agent import SWEEP_SLICE, Analyzer  # noqa: E402
from skyline.analysis.analyzer.analysis import analyse  # noqa: E402
from skyline.settings import Settings, load_settings  # noqa: E402
from skyline.store.timeseries import TimeSeriesStore  # noqa: E402

STEP = 60
SHAPES = ("noise", "seasonal", "trend", "counter", "walk")
OWN_BASELINE = "skyline run_ensemble per series (no --earthgecko DIR given)"
EARTHGECKO_BASELINE = "earthgecko Skyline run_selected_algorithm per series"
# values for run_selected_algorithm's arguments after (timeseries, metric_name), by name
EARTHGECKO_ARGS: dict[str, Any] = {
    "metric_airgapped": False,
    "airgapped_metrics": [],
    "airgapped_metrics_filled": [],
    "run_negatives_present": False,
    "check_for_airgaps_only": False,
    "custom_stale_metrics_dict": {},
}
# the exceptions earthgecko raises to skip a series; any other is a broken baseline
EARTHGECKO_SKIPS = frozenset({"TooShort", "Stale", "Boring", "EmptyTimeseries"})


def synthetic(m: int, n: int, now: int, seed: int = 42, spike_rate: float = 0.01):
    """Timestamps (m, n) int64 and values (m, n) float64 of seeded synthetic metrics."""
    rng = np.random.default_rng(seed)
    jitter = rng.integers(0, STEP, m)
    t = (now - jitter)[:, None] - STEP * np.arange(n - 1, -1, -1)[None, :]
    phase = rng.uniform(0, 2 * np.pi, (m, 1))
    level = rng.lognormal(3, 2, (m, 1))
    sd = level * rng.uniform(0.01, 0.2, (m, 1))
    v = level + sd * rng.standard_normal((m, n))
    shape = rng.integers(0, len(SHAPES), m)
    season = np.sin(2 * np.pi * t / 86400 + phase) * level * 0.5
    v = np.where((shape == 1)[:, None], v + season, v)
    trend = np.linspace(0, 1, n)[None, :] * level * rng.uniform(-1, 1, (m, 1))
    v = np.where((shape == 2)[:, None], v + trend, v)
    counts = np.cumsum(rng.poisson(np.minimum(level, 1e6), (m, n)), axis=1).astype(np.float64)
    reset = rng.integers(1, n, m)  # a third of the counters restart from 0 there
    after = (np.arange(n)[None, :] >= reset[:, None]) & (rng.random(m) < 1 / 3)[:, None]
    counts = np.where(after, counts - counts[np.arange(m), reset - 1][:, None], counts)
    v = np.where((shape == 3)[:, None], counts, v)
    walk = level + np.cumsum(sd * rng.standard_normal((m, n)), axis=1)
    v = np.where((shape == 4)[:, None], walk, v)
    spiked = np.flatnonzero(rng.random(m) < spike_rate)
    v[spiked, -3:] += 20 * (sd[spiked] + 1)
    return t.astype(np.int64), v


def bench_settings(tmp: str, mode: str) -> Settings:
    """Default settings (an empty file: no local configuration leaks in), ``mode``."""
    conf = Path(tmp) / "bench.conf"
    conf.write_text("")
    env = {"SKYLINE__SKYLINE__VAR_DIR": tmp, "SKYLINE__ANALYZER__MODE": mode}
    return load_settings(conf, env=env)


def seed(store: TimeSeriesStore, names: list[str], t: np.ndarray, v: np.ndarray,
         lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> None:  # fmt: skip
    """Append row i's points ``lo[i]:hi[i]`` (default: all of them) of ``t``/``v``."""
    n = t.shape[1]
    lo = np.zeros(len(names), np.int64) if lo is None else lo
    hi = np.full(len(names), n, np.int64) if hi is None else hi
    for start in range(0, len(names), 500):
        rows = [i for i in range(start, min(start + 500, len(names))) if lo[i] < hi[i]]
        store.append_grouped({names[i]: (t[i, lo[i] : hi[i]].tolist(), v[i, lo[i] : hi[i]].tolist())
                              for i in rows})  # fmt: skip


def seed_steady(store: TimeSeriesStore, names: list[str], t: np.ndarray, v: np.ndarray,
                points: int, now: int) -> None:  # fmt: skip
    """Row i as the daemon finds it between two roomba rewrites: ``points`` points
    sealed by a rewrite (nothing trimmed), then ``extra[i]`` more as raw records,
    ending at the row's last point (``extra`` in 0 .. t.shape[1] - points, seeded)."""
    spare = t.shape[1] - points
    extra = np.random.default_rng(7).integers(0, spare + 1, len(names))
    first = spare - extra
    seed(store, names, t, v, first, first + points)
    sealed = store.trim_many(names, now, keep_seconds=2**31, grace=0, inactive_after=2**31)
    if sealed.get("rewritten") != len(names):
        raise SystemExit(f"sealing the seeded series: {dict(sealed)}")
    seed(store, names, t, v, first + points)


def interleaved(jobs: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """The best of ``reps`` timings of each job, in seconds; the jobs take turns in
    every rep, so a burst of load on a shared machine hits them alike."""
    times = dict.fromkeys(jobs, float("inf"))
    for _ in range(reps):
        for name, fn in jobs.items():
            t0 = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - t0)
    return times


def sweep_jobs(daemon: Analyzer, names: list[str]) -> dict[str, Callable[[], object]]:
    """The daemon's own pass over every metric, in its sweep slices; and its two main
    parts alone, over the same slices: reading, and ``analyse`` on series read before."""
    store, opts, now = daemon.store, daemon.options, daemon.clock()
    detect = daemon.settings.analyzer.detect_counters
    parts = [names[i : i + SWEEP_SLICE] for i in range(0, len(names), SWEEP_SLICE)]
    read = [store.read_many(part) for part in parts]

    def sweep() -> None:
        daemon.emitted.clear()  # every rep hands on the same anomalies
        for part in parts:
            daemon.analyse_metrics(part, "sweep")

    def read_only() -> None:
        for part in parts:  # each slice's series dropped before the next, as in the sweep
            store.read_many(part)

    def analyse_only() -> None:
        for series in read:
            analyse(series, now, opts, detect)

    return {"sweep": sweep, "read_many": read_only, "analyse": analyse_only}


def own_baseline(store: TimeSeriesStore, names: list[str], now: float, opts: EnsembleOptions,
                 detect: bool) -> Callable[[], int]:  # fmt: skip
    """Read the series, then counters and ``run_ensemble`` one series at a time."""

    def run() -> int:
        anomalous = 0
        for s in store.read_many(names).values():
            if detect and is_counter(s):
                s = non_negative_derivative(s)
            anomalous += bool(run_ensemble(s, now=now, options=opts).anomalous)
        return anomalous

    return run


def load_earthgecko(directory: str) -> Callable[..., Any]:
    """``run_selected_algorithm`` from a checkout of earthgecko Skyline's
    ``skyline/analyzer`` directory (its own ``settings`` module is found beside it)."""
    where = Path(directory).resolve()
    if not (where / "algorithms.py").is_file():
        raise SystemExit(f"--earthgecko {directory}: no algorithms.py there; give the "
                         "skyline/analyzer directory of an earthgecko Skyline checkout")  # fmt: skip
    for path in (where.parent, where):
        sys.path.insert(0, str(path))
    module = importlib.import_module("algorithms")
    fn = getattr(module, "run_selected_algorithm", None)
    if fn is None:
        raise SystemExit(f"--earthgecko {directory}: algorithms.py has no run_selected_algorithm")
    return fn


def earthgecko_baseline(fn: Callable[..., Any], store: TimeSeriesStore, names: list[str],
                        detect: bool, outcomes: Counter[str]) -> Callable[[], int]:  # fmt: skip
    """Read the series, convert counters, give each to ``fn`` as ``[(t, v), ...]``.
    Its skips (TooShort, Stale, Boring...) are exceptions, counted in ``outcomes``."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    extra = [EARTHGECKO_ARGS.get(p.name) for p in params if p.default is p.empty]

    def run() -> int:
        outcomes.clear()
        anomalous = 0
        for name, s in store.read_many(names).items():
            if detect and is_counter(s):
                s = non_negative_derivative(s)
            timeseries = list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
            try:
                result = fn(timeseries, name, *extra)
            except Exception as exc:  # noqa: BLE001 - earthgecko signals skips by raising
                if type(exc).__name__ not in EARTHGECKO_SKIPS:
                    raise SystemExit(f"earthgecko's run_selected_algorithm failed on {name}: "
                                     f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
                outcomes[type(exc).__name__] += 1
                continue
            verdict = bool(result[0] if isinstance(result, tuple) else result)
            outcomes["anomalous" if verdict else "not_anomalous"] += 1
            anomalous += verdict
        return anomalous

    return run


def baseline_jobs(daemon: Analyzer, names: list[str], earthgecko: str | None,
                  outcomes: Counter[str]) -> dict[str, Callable[[], object]]:  # fmt: skip
    store, opts, now = daemon.store, daemon.options, daemon.clock()
    detect = daemon.settings.analyzer.detect_counters
    jobs = {"per_series": own_baseline(store, names, now, opts, detect)}
    if earthgecko is not None:
        fn = load_earthgecko(earthgecko)
        jobs["earthgecko"] = earthgecko_baseline(fn, store, names, detect, outcomes)
    return jobs


def figures(daemon: Analyzer, names: list[str], sample: int, times: dict[str, float],
            reps: int, outcomes: Counter[str]) -> dict[str, Any]:  # fmt: skip
    """Throughputs and the checks that the daemon really analysed every metric."""
    counts = daemon.counters.take()
    if counts.get("total_analyzed") != reps * len(names):
        raise SystemExit(f"the daemon analysed {counts.get('total_analyzed')} metrics, "
                         f"not {reps} x {len(names)}")  # fmt: skip
    verdicts, counters = analyse(daemon.store.read_many(names), daemon.clock(), daemon.options,
                                 daemon.settings.analyzer.detect_counters)  # fmt: skip
    m = len(names)
    out: dict[str, Any] = {
        "sweep_metrics_per_s": m / times["sweep"],
        "sweep_us_per_metric": 1e6 * times["sweep"] / m,
        "read_many_metrics_per_s": m / times["read_many"],
        "analyse_metrics_per_s": m / times["analyse"],
        "anomalous": int(counts.get("total_anomalies", 0)) // reps,
        "anomalous_verdicts": sum(1 for v in verdicts.values() if v.anomalous),
        "counters": len(counters),
        "baseline_metrics": sample,
        "per_series_metrics_per_s": sample / times["per_series"],
        "baseline": OWN_BASELINE if "earthgecko" not in times else EARTHGECKO_BASELINE,
    }
    out["baseline_metrics_per_s"] = out["per_series_metrics_per_s"]
    if "earthgecko" in times:
        out["earthgecko_metrics_per_s"] = out["baseline_metrics_per_s"] = (
            sample / times["earthgecko"]
        )
        out["earthgecko_outcomes"] = dict(outcomes)
        if outcomes.get("Stale"):
            print(f"warning: earthgecko judged {outcomes['Stale']} series stale (its clock is "
                  "the wall clock): that baseline did less work than ours", file=sys.stderr)  # fmt: skip
    out["sweep_vs_baseline"] = out["sweep_metrics_per_s"] / out["baseline_metrics_per_s"]
    return out


def run(client: redis.Redis, a: argparse.Namespace) -> dict[str, Any]:
    client.flushdb()
    now = int(time.time())
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="skybench-") as tmp:
        daemon = Analyzer(bench_settings(tmp, a.mode), redis_client=client, clock=lambda: now)
        daemon.setup()
        names = [f"bench.metric.{i}" for i in range(a.metrics)]
        if a.state == "fresh":
            seed(daemon.store, names, *synthetic(a.metrics, a.points, now))
        else:
            horizon = daemon.settings.horizon
            spare = (horizon.roomba_grace + horizon.roomba_interval) // STEP
            seed_steady(daemon.store, names, *synthetic(a.metrics, a.points + spare, now),
                        a.points, now)  # fmt: skip
        sample = names[: a.per_series]
        jobs = {
            **sweep_jobs(daemon, names),
            **baseline_jobs(daemon, sample, a.earthgecko, outcomes),
        }
        out = figures(daemon, names, len(sample), interleaved(jobs, a.reps), a.reps, outcomes)
    client.flushdb()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", type=int, default=20000)
    p.add_argument("--points", type=int, default=1440)
    p.add_argument("--per-series", type=int, default=1000, help="metrics the baseline times")
    p.add_argument("--mode", choices=("classic", "default"), default="classic")
    p.add_argument(
        "--state",
        choices=("steady", "fresh"),
        default="steady",
        help="series sealed by roomba with raw tails (steady) or raw only",
    )
    p.add_argument("--earthgecko", metavar="DIR", help="earthgecko Skyline's skyline/analyzer")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--redis-url", default=None, help="its DB 12 is FLUSHED (default: embedded)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    load = os.getloadavg()[0]
    out: dict[str, Any] = {"metrics": a.metrics, "points": a.points, "mode": a.mode,
                           "state": a.state}  # fmt: skip
    out.update(with_redis(a.redis_url, lambda c: run(c, a)))
    out["metrics_per_s"] = out["sweep_metrics_per_s"]
    out["load_1min_start"], out["load_1min_end"] = round(load, 2), round(os.getloadavg()[0], 2)
    print(f"baseline: {out['baseline']}")
    for k, val in out.items():
        if isinstance(val, float):
            print(f"{k:32s} {val:14,.2f}")
        elif isinstance(val, int):
            print(f"{k:32s} {val:14,d}")
    if a.json:
        print(json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in out.items()}))
    return out


if __name__ == "__main__":
    main()
    sys.exit(0)
