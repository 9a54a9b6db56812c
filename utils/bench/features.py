#!/usr/bin/env python
"""Ionosphere benchmark: feature extraction and one check against many profiles.

Measured on one seeded 1,440-point series (a day at 60 s: daily sine, noise, level):

* ``extract_ms``: ``skyline.analysis.ionosphere.features.extract`` (tsfresh's calculators
  called directly on a numpy array), median of ``--reps`` runs after one warm-up;
* ``tsfresh_pandas_ms``: the same feature set through ``tsfresh.extract_features``
  (long DataFrame, n_jobs=0, no progress bar), median of 3 runs;
* ``efficient_pandas_ms``: tsfresh's ``EfficientFCParameters`` through
  ``extract_features`` (roughly what the reference ran), one run;
* ``check_ms`` / ``features_compare_ms`` / ``motifs_ms``: ``check.check`` against
  ``--profiles`` profiles (features already extracted, as the daemon does), no match,
  so every profile and every motif size is compared; median of ``--reps``.

Single process, single thread (set OPENBLAS_NUM_THREADS=1).  The last line with
``--json`` is one JSON object of these figures.

    python utils/bench/features.py [--profiles 100] [--reps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

from skyline.analysis.ionosphere.check import check
from skyline.analysis.ionosphere.feature_spec import PARAMETERISED, SIMPLE
from skyline.analysis.ionosphere.features import extract
from skyline.analysis.ionosphere.matching import Mass, features_compare, motif_compare, stack_series
from skyline.analysis.ionosphere.profile_data import ProfileData, ProfileMeta, feature_vector
from skyline.settings import IonosphereSection


def series(seed: int, n: int = 1440) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 20 * np.sin(2 * np.pi * t / n + seed) + rng.normal(0, 2, n)


def median_ms(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def pandas_extract(x: np.ndarray, params: dict | None) -> None:
    import pandas as pd
    from tsfresh import extract_features
    from tsfresh.feature_extraction import EfficientFCParameters

    df = pd.DataFrame({"id": 1, "time": np.arange(len(x)), "value": x})
    extract_features(df, column_id="id", column_sort="time", n_jobs=0, disable_progressbar=True,
                     default_fc_parameters=params or EfficientFCParameters())  # fmt: skip


def our_params() -> dict:
    out: dict = {name: None for name, _ in SIMPLE}
    out.update({name: params for name, params, _ in PARAMETERISED})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profiles", type=int, default=100)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--json", action="store_true", help="end with one line of JSON figures")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    x = series(0)
    extract(x)
    fig: dict[str, float] = {"points": len(x), "profiles": args.profiles}
    fig["extract_ms"] = median_ms(lambda: extract(x), args.reps)
    fig["features"] = extract(x).count
    fig["tsfresh_pandas_ms"] = median_ms(lambda: pandas_extract(x, our_params()), 3)
    fig["efficient_pandas_ms"] = median_ms(lambda: pandas_extract(x, None), 1)
    cfg = IonosphereSection()
    data = {}
    metas = []
    for i in range(args.profiles):
        s = series(i + 1) * (1.5 + i / 10)  # other levels: no profile matches
        f = extract(s)
        data[i + 1] = ProfileData(i + 1, feature_vector(f.ids, f.values), s)
        metas.append(ProfileMeta(i + 1, 86400, 0, None, False, None))
    feats = extract(x)
    fig["check_ms"] = median_ms(
        lambda: check(x, metas, data, 86400, cfg, features=feats), args.reps
    )
    calc = feature_vector(feats.ids, feats.values)
    matrix = np.stack([d.features for d in data.values()])
    fig["features_compare_ms"] = median_ms(
        lambda: features_compare(calc, matrix, percent_similar=1.0), args.reps
    )
    rows, lengths = stack_series([d.series for d in data.values()])

    def motifs() -> None:
        mass = Mass(rows, lengths, max(cfg.motif_sizes))
        for m in cfg.motif_sizes:
            motif_compare(x, mass, m, max_distance=0.3, padding_percent=10)

    fig["motifs_ms"] = median_ms(motifs, args.reps)
    for k, v in fig.items():
        print(f"{k:22s} {v:10.2f}")
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in fig.items()}, sort_keys=True))


if __name__ == "__main__":
    main()
