"""``skyline crucible FILE.csv|METRIC --out DIR [--mode classic|default]``.

``register(subparsers)`` adds the command; ``run(args, settings)`` runs it.  Exit
status: 0 report written, 1 the operation failed (Redis unreachable, a custom
algorithm that cannot be loaded, the output not writable), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import redis

from skyline.analysis.algorithms import EnsembleOptions
from skyline.analysis.algorithms.custom import CustomAlgorithmError, CustomRunner
from skyline.analysis.crucible.plot import write_plot
from skyline.analysis.crucible.report import (
    MAX_POINTS,
    CrucibleInputError,
    SeriesInput,
    analyse_series,
    read_csv,
    read_metric,
)
from skyline.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "crucible",
        help="run every algorithm on one series: DIR/report.json and DIR/plot.png",
        description="Deep analysis of one series (a CSV file of timestamp,value rows or a "
        "stored metric): every algorithm on the newest point, the ensemble walked forward "
        "over every earlier point.",
    )
    p.add_argument("source", metavar="FILE.csv|METRIC", help="a CSV file or a metric name")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--mode", choices=["classic", "default"],
                   help="ensemble mode (default: [analyzer] mode)")  # fmt: skip
    p.add_argument("--consensus", type=int, help="default: [analyzer] consensus")
    p.add_argument("--window", type=int, metavar="POINTS",
                   help="walk-forward window (default: full_duration at the median step)")  # fmt: skip
    p.add_argument("--max-points", type=int, default=MAX_POINTS,
                   help="sample the walk above this many points (default %(default)s)")  # fmt: skip
    p.add_argument("--no-walk", action="store_true", help="judge the newest point only")
    p.add_argument("--no-custom", action="store_true", help="leave custom algorithms out")
    p.add_argument("--json", action="store_true", help="print the report on stdout too")
    return p


def _fail(message: str, code: int) -> int:
    print(f"skyline crucible: {message}", file=sys.stderr)
    return code


def _is_file_arg(source: str) -> bool:
    return Path(source).is_file() or source.lower().endswith((".csv", ".txt"))


def read_input(source: str, settings: Settings) -> SeriesInput:
    if _is_file_arg(source):
        return read_csv(source)
    from skyline.store.connection import connect
    from skyline.store.keys import RedisKeys
    from skyline.store.timeseries import TimeSeriesStore

    store = TimeSeriesStore(connect(settings), RedisKeys(settings.redis.prefix))
    return read_metric(store, source)


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.perf_counter()
    cfg = settings.analyzer
    consensus = args.consensus or cfg.consensus
    if not 1 <= consensus <= len(cfg.algorithms):
        return _fail(f"--consensus must be 1..{len(cfg.algorithms)}", 2)
    try:
        data = read_input(args.source, settings)
    except CrucibleInputError as exc:
        return _fail(str(exc), 2)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return _fail(f"cannot read {args.source!r} from Redis: {exc}", 1)
    t_read = time.perf_counter()
    try:
        runner = None if args.no_custom else CustomRunner(settings.custom_algorithms, "crucible")
    except CustomAlgorithmError as exc:
        return _fail(str(exc), 1)
    try:
        report = analyse_series(
            data,
            options=replace(
                EnsembleOptions.from_settings(cfg),
                mode=args.mode or cfg.mode,
                consensus=consensus,
                full_duration=settings.skyline.full_duration,
            ),
            runner=runner or None,
            metric=None if data.kind == "csv" else data.source,
            window=args.window,
            walk=not args.no_walk,
            max_points=max(1, args.max_points),
        )
    finally:
        if runner is not None:
            runner.close()
    return _write(args, data, report, started, t_read)


def _write(args: argparse.Namespace, data: SeriesInput, report: dict, started: float,
           t_read: float) -> int:  # fmt: skip
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        t_plot = time.perf_counter()
        write_plot(data.series, report, args.out / "plot.png")
        report["timings"] |= {"read_s": round(t_read - started, 4),
                              "plot_s": round(time.perf_counter() - t_plot, 4)}  # fmt: skip
        report["timings"]["total_s"] = round(time.perf_counter() - started, 4)
        text = json.dumps(report, indent=2)
        (args.out / "report.json").write_text(text + "\n")
    except OSError as exc:
        return _fail(f"cannot write to {args.out}: {exc.strerror or exc}", 1)
    if args.json:
        print(json.dumps(report))
    else:
        ens = report["ensemble"]
        state = {True: "anomalous", False: "not anomalous", None: f"skipped ({ens['skip']})"}
        flagged = len(report.get("walk", {}).get("anomalies", []))
        print(f"{data.source}: newest point {state[ens['anomalous']]}"
              f" ({', '.join(ens['triggered']) or 'no algorithm triggered'});"
              f" walk-forward flagged {flagged} points; wrote {args.out}/report.json, plot.png")  # fmt: skip
    return 0
