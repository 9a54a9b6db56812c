"""The streaming-detector benchmark (utils/bench/detector.py) runs the analyzer's own
default-mode pass and reports every point judged, in a separate process (its
``--sections`` timers wrap the pass's methods for the life of the process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "utils" / "bench" / "detector.py"


def test_the_detector_benchmark_judges_every_point_and_times_the_stages():
    args = ["--metrics", "60", "--history", "150", "--rounds", "4", "--batch", "3",
            "--checkpoint", "120", "--sections", "--json"]  # fmt: skip
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                         timeout=300, env=env, check=True)  # fmt: skip
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["metrics"] == 60 and out["history"] == 150
    assert out["state_bytes"] <= 8192 and out["state_memory_usage_bytes"] > out["state_bytes"]
    # 60 s rounds, a 120 s checkpoint spread over [60, 120) s: saves in some rounds only
    assert 0 < out["state_saves_per_round"] < 60
    stages = [
        out[f"us_per_metric_{k}"]
        for k in ("ask", "wait", "load", "answer", "new_points", "score_flat", "save")
    ]
    assert all(x >= 0 for x in stages) and 0 < sum(stages) <= out["us_per_metric_total"]
    for key in ("points_per_s_amortised", "batch_points_per_s", "first_pass_points_per_s"):
        assert out[key] > 0
