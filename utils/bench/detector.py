#!/usr/bin/env python
"""Streaming-detector benchmark: the analyzer's default-mode pass, through its own code.

An ``Analyzer`` daemon object (``[analyzer] mode = "default"``) on a Redis holding
``--metrics`` seeded synthetic metrics (the analyzer benchmark's shapes) with
``--history`` points each.  The first ``analyse_metrics`` pass builds every
metric's detector state from its stored series (each point judged).  Then, per
round, every metric receives one new point (written as horizon writes it) and the
daemon's ``analyse_metrics(names, "arrival")`` is timed: state GET, incremental
read of the new points, the vectorised step, state SETs with TTL, and events for
anything flagged (with the ensemble's evidence) -- all of it.  A last round gives
every metric a batch of ``--batch`` late points at once.

Rounds are ``STEP`` (60 s) apart on a simulated clock given to the pass, so the
state checkpoints (``[analyzer] state_checkpoint``, or ``--checkpoint S``) fall due
as they would live: a state is written back once per checkpoint interval, spread
over the rounds.  The amortised rate (all rounds' points over all rounds' time)
therefore includes the saves; run enough rounds to cover a checkpoint interval
(default 10 rounds = 600 s, twice the default 300 s).  ``--checkpoint 0`` writes
every state every round, as before checkpoints.

Reported: points judged per second per round (best and median), the batch figure,
the first (rebuild) pass, and the state size (packed bytes and Redis MEMORY USAGE).
One process, one thread (``OPENBLAS_NUM_THREADS=1``).  Redis: an embedded server in
a temp dir, or ``--redis-url`` (DB 12, flushed).

    python utils/bench/detector.py [--metrics 10000] [--history 400] [--rounds 10]
                                   [--batch 10] [--checkpoint S] [--redis-url URL] [--json]
                                   [--sections]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import redis  # noqa: E402
from analyzer import STEP, synthetic  # noqa: E402
from benchkit import with_redis  # noqa: E402

from skyline.analysis.analyzer import detect as detect_module  # noqa: E402
from skyline.analysis.analyzer.agent import Analyzer  # noqa: E402
from skyline.analysis.analyzer.detect import DetectorPass  # noqa: E402
from skyline.settings import load_settings  # noqa: E402
from skyline.store.raw import Pending  # noqa: E402
from skyline.store.timeseries import TimeSeriesStore  # noqa: E402


def make_analyzer(client: redis.Redis, var_dir: str, checkpoint: float | None) -> Analyzer:
    env = {"SKYLINE__SKYLINE__VAR_DIR": var_dir, "SKYLINE__ANALYZER__MODE": "default",
           "SKYLINE__REDIS__PREFIX": "skybench:"}  # fmt: skip
    if checkpoint is not None:
        env["SKYLINE__ANALYZER__STATE_CHECKPOINT"] = str(checkpoint)
    daemon = Analyzer(load_settings(None, env=env), redis_client=client)
    daemon.setup()
    return daemon


def write_points(daemon: Analyzer, names: list[str], t: np.ndarray, v: np.ndarray) -> None:
    """Columns ``t``/``v`` (metrics x points) appended as horizon does, 500 metrics a call."""
    for a in range(0, len(names), 500):
        daemon.store.append_grouped(
            {names[i]: (t[i].tolist(), v[i].tolist()) for i in range(a, min(a + 500, len(names)))}
        )


class Sections:
    """Wall time of the pass's stages per one-point round (``--sections``): the
    ``DetectorPass`` methods, ``score_flat`` and the store's ``answer_since`` wrapped
    with a timer.  ``wait`` is reading the replies to a chunk's reads (``Pending``),
    the time Redis's answers were not ready; the rest of ``total`` is the daemon's
    work outside the pass.  Off by default, so the figures above are of the
    unwrapped code."""

    STAGES = (
        (DetectorPass, "_ask"),
        (Pending, "read"),
        (DetectorPass, "_load"),
        (TimeSeriesStore, "answer_since"),
        (DetectorPass, "_new_points"),
        (detect_module, "score_flat"),
        (DetectorPass, "_save"),
    )
    NAMES = {"read": "wait", "answer_since": "answer"}

    def __init__(self) -> None:
        self.on = self.inside = False
        self.now: dict[str, float] = {}
        self.rounds: list[dict[str, float]] = []
        for owner, name in self.STAGES:
            label = self.NAMES.get(name, name.strip("_"))
            setattr(owner, name, self._timed(getattr(owner, name), label))

    def _timed(self, fn, name: str):  # type: ignore[no-untyped-def]
        """``fn`` timed, unless it runs inside another stage (a save's own replies are
        the save's time, not ``wait``): the stages never overlap."""

        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            if self.inside:
                return fn(*args, **kwargs)
            self.inside = True
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.inside = False
                if self.on:
                    self.now[name] = self.now.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    def start(self) -> None:
        self.on, self.now = True, {}

    def stop(self, total: float) -> None:
        self.on = False
        self.rounds.append({**self.now, "total": total})

    def report(self, metrics: int) -> dict[str, float]:
        """Median over the rounds of each stage, in µs per metric."""
        keys = (*(self.NAMES.get(n, n.strip("_")) for _, n in self.STAGES), "total")
        return {f"us_per_metric_{k}":
                statistics.median(r.get(k, 0.0) for r in self.rounds) / metrics * 1e6
                for k in keys}  # fmt: skip


def timed(daemon: Analyzer, names: list[str]) -> tuple[float, int]:
    before = daemon.detect.counts.judged if daemon.detect else 0
    t0 = time.perf_counter()
    daemon.analyse_metrics(names, "arrival")
    took = time.perf_counter() - t0
    return took, (daemon.detect.counts.judged if daemon.detect else 0) - before


def run(client: redis.Redis, a: argparse.Namespace) -> dict:
    client.flushdb()
    total = a.history + a.rounds + a.batch
    t, v = synthetic(a.metrics, total, now=1_700_000_000)
    names = [f"bench.metric.{i}" for i in range(a.metrics)]
    out: dict = {"metrics": a.metrics, "history": a.history}
    with tempfile.TemporaryDirectory() as var_dir:
        daemon = make_analyzer(client, var_dir, a.checkpoint)
        assert daemon.detect is not None
        out["checkpoint_s"] = daemon.settings.analyzer.state_checkpoint
        sim = [0.0]
        daemon.detect.clock = lambda: sim[0]
        write_points(daemon, names, t[:, : a.history], v[:, : a.history])
        took, judged = timed(daemon, names)
        out["first_pass_points_per_s"] = judged / took
        rates, total_took, saves = [], 0.0, 0
        sections = Sections() if a.sections else None
        for r in range(a.rounds):
            sim[0] += STEP
            col = slice(a.history + r, a.history + r + 1)
            write_points(daemon, names, t[:, col], v[:, col])
            before = daemon.detect.counts.saved
            if sections:
                sections.start()
            took, judged = timed(daemon, names)
            if sections:
                sections.stop(took)
            saves += daemon.detect.counts.saved - before
            assert judged == a.metrics, (judged, a.metrics)
            rates.append(judged / took)
            total_took += took
        out["points_per_s_amortised"] = a.rounds * a.metrics / total_took
        out["points_per_s_best"] = max(rates)
        out["points_per_s_median"] = statistics.median(rates)
        out["state_saves_per_round"] = saves / a.rounds
        if sections:
            out.update(sections.report(a.metrics))
        col = slice(a.history + a.rounds, total)
        write_points(daemon, names, t[:, col], v[:, col])
        took, judged = timed(daemon, names)
        out["batch_points_per_s"] = judged / took
        out["state_bytes"] = daemon.detect.detector.layout.nbytes
        usage = client.memory_usage(daemon.keys.detector_state(names[0]))
        out["state_memory_usage_bytes"] = int(usage or 0)
    client.flushdb()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", type=int, default=10000)
    p.add_argument("--history", type=int, default=400, help="points before the timed rounds")
    p.add_argument("--rounds", type=int, default=10, help="one point per metric, 60 s apart")
    p.add_argument(
        "--checkpoint",
        type=float,
        default=None,
        help="[analyzer] state_checkpoint in s (default: the setting's)",
    )
    p.add_argument("--batch", type=int, default=10, help="late points per metric, last round")
    p.add_argument("--redis-url", default=None, help="its DB 12 is FLUSHED (default: embedded)")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--sections",
        action="store_true",
        help="also time the pass's stages (median µs per metric over the rounds)",
    )
    a = p.parse_args(argv)
    out = with_redis(a.redis_url, lambda c: run(c, a))
    out["step_s"] = STEP
    for k, val in out.items():
        print(f"{k:32s} {val:14,.1f}" if isinstance(val, float) else f"{k:32s} {val:14,d}")
    if a.json:
        print(json.dumps({k: round(x, 1) if isinstance(x, float) else x for k, x in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
