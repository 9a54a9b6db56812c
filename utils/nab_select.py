#!/usr/bin/env python
"""Variant selection for the default detector by leave-one-category-out CV on NAB.

Each argument is a dict of ``SpikeLevelParams`` overrides (``"{}"``: the defaults).
Every variant runs over the whole corpus through ``score_points`` (all files in
lockstep, as the analyzer steps metrics); printed per variant: the state width,
the CPU time of ``score_points``, in-sample scores and thresholds and the
threshold-only CV score for the three profiles.  With more than one variant, the
selection CV (``skyline.analysis.nab.crossval.report``: variant and threshold chosen without
the held-out category) closes the output; ``--nested`` adds the nested CV
(``crossval.nested``: the variant chosen by its leave-one-category-out score on the
other categories instead of its in-sample score there; slower, about 20 s per
variant and profile).

    python utils/nab_select.py --data ../shared/nab/data "{}" "{'burn_in': 300}"
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import ast  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from skyline.analysis.algorithms.spike_level import SpikeLevel, SpikeLevelParams  # noqa: E402
from skyline.analysis.algorithms.stepping import score_points  # noqa: E402
from skyline.analysis.nab import crossval, runner, scoring  # noqa: E402


def cases_for(params: dict, series: list, windows: dict) -> tuple[list, int, float]:
    det = SpikeLevel(SpikeLevelParams(**params))
    state = det.new_state(len(series))
    t0 = time.process_time()
    raw = score_points(det, state, [s.timestamps for s in series], [s.values for s in series])
    took = time.process_time() - t0
    cases = [scoring.prepare(s.name, s.timestamps, np.nan_to_num(x, nan=0.0),
                             windows.get(s.name, [])) for s, x in zip(series, raw, strict=True)]  # fmt: skip
    return cases, det.layout.width, took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="DIR/<category>/<file>.csv")
    p.add_argument("--labels", type=Path, help="default: DATA/../labels/combined_windows.json")
    p.add_argument("--nested", action="store_true", help="also the nested CV (slow)")
    p.add_argument("variants", nargs="*", default=["{}"])
    a = p.parse_args(argv)
    windows = runner.load_windows(a.labels or runner.default_labels(a.data))
    series = [runner.read_series(a.data, n) for n in runner.corpus_files(a.data)]
    n_windows = sum(len(windows.get(s.name, [])) for s in series)
    variants = {}
    for arg in a.variants or ["{}"]:
        overrides = ast.literal_eval(arg)
        if not isinstance(overrides, dict):
            p.error(f"{arg!r} is not a dict of SpikeLevelParams overrides")
        cases, width, took = cases_for(overrides, series, windows)
        variants[arg] = cases
        row = []
        for name, prof in scoring.PROFILES.items():
            threshold, raw = scoring.optimise_threshold(cases, prof)
            cv = crossval.leave_one_category_out({arg: cases}, prof)["score"]
            row.append(f"{name} {scoring.normalise(raw, n_windows, prof):.1f} "
                       f"(thr {threshold:.3f}, CV {cv:.1f})")  # fmt: skip
        print(f"{arg}: width {width}, {took:.1f} s; " + "; ".join(row))
    if len(variants) > 1:
        for name, r in crossval.report(variants).items():
            print(f"selection CV {name}: {r['cross_validated']['score']:.1f} "
                  f"(in-sample best {r['in_sample']['variant']} {r['in_sample']['score']:.1f})")  # fmt: skip
        for name, prof in scoring.PROFILES.items() if a.nested else ():
            r = crossval.nested(variants, prof)
            picks = ", ".join(f"{f['held_out']}: {f['variant']}" for f in r["folds"])
            print(f"nested CV {name}: {r['score']:.1f} ({picks})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
