"""``skyline nab run`` and ``skyline nab score``.

``register(subparsers)`` adds the ``nab`` command to a parent parser;
``main(args)`` runs a parsed namespace (or parses an argv list itself).
Exit status: 0 done, 1 the operation failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from skyline.analysis.algorithms.streaming import DETECTORS
from skyline.analysis.nab import crossval, runner, scoring
from skyline.settings import load_settings
from skyline.settings.base import SettingsError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``nab run`` and ``nab score`` under ``subparsers``; returns the nab parser."""
    nab = subparsers.add_parser("nab", help="run and score detectors on a NAB corpus")
    sub = nab.add_subparsers(dest="nab_command", required=True)
    run = sub.add_parser("run", help="write NAB results files for one detector")
    run.add_argument("--data", required=True, type=Path, help="corpus: DIR/<category>/<file>.csv")
    run.add_argument("--out", required=True, type=Path, help="results root")
    run.add_argument(
        "--detector",
        help="default: the analyzer's detector and threshold ([analyzer] mode = default); "
        f"or one of {', '.join(DETECTORS)}",
    )
    run.add_argument("--config", type=Path, help="settings file (default: SKYLINE_CONF)")
    run.add_argument(
        "--labels", type=Path, help="combined_windows.json (default DATA/../labels/...)"
    )
    run.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    score = sub.add_parser("score", help="score results files with NAB's rules")
    score.add_argument("--results", required=True, type=Path, help="results root")
    score.add_argument("--labels", required=True, type=Path, help="combined_windows.json")
    score.add_argument("--data", required=True, type=Path, help="the corpus that was run")
    score.add_argument("--detector", default="spike_level")
    score.add_argument(
        "--threshold",
        type=float,
        help="also score at this fixed threshold (default: the one nab run recorded)",
    )
    score.add_argument("--out", type=Path, help="write the JSON report here (default stdout)")
    cv = sub.add_parser(
        "cv",
        help="the analyzer's detector: in-sample, fixed-threshold and leave-one-category-out "
        "cross-validated scores",
    )
    cv.add_argument("--data", required=True, type=Path, help="corpus: DIR/<category>/<file>.csv")
    cv.add_argument("--labels", required=True, type=Path, help="combined_windows.json")
    cv.add_argument("--config", type=Path, help="settings file (default: SKYLINE_CONF)")
    cv.add_argument("--out", type=Path, help="write the JSON report (with per-file rows) here")
    return nab


def cmd_cv(args: argparse.Namespace) -> int:
    """Scores of the shipped detector: its optimised threshold in-sample, the
    configured threshold, and a threshold chosen without the held-out category."""
    if not args.labels.exists():
        return _fail(f"no labels file {args.labels}", 2)
    if not runner.corpus_files(args.data):
        return _fail(f"no <category>/<file>.csv under {args.data}", 2)
    try:
        threshold = load_settings(args.config).analyzer.threshold
    except SettingsError as exc:
        return _fail(str(exc), 2)
    name, series, scores = runner.analyzer_scores(args.data)
    windows = runner.load_windows(args.labels)
    cases = [scoring.prepare(s.name, s.timestamps, sc, windows.get(s.name, []))
             for s, sc in zip(series, scores, strict=True)]  # fmt: skip
    report: dict[str, Any] = {"detector": name, "threshold": threshold, "files": len(cases),
              "windows": sum(c.n_windows for c in cases),
              "profiles": crossval.report({name: cases}, name, threshold)}  # fmt: skip
    for pname, profile in scoring.PROFILES.items():
        t = report["profiles"][pname]["shipped_in_sample"]["threshold"]
        report["profiles"][pname]["per_file"] = {
            c.name: scoring.score_file(c, t, profile) for c in cases
        }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    for pname, row in report["profiles"].items():
        print(f"{pname:20s} in-sample {row['shipped_in_sample']['score']:5.1f} "
              f"(threshold {row['shipped_in_sample']['threshold']:.3f})  "
              f"at {threshold}: {row['shipped_fixed_threshold']['score']:5.1f}  "
              f"leave-one-category-out {row['shipped_cross_validated']['score']:5.1f}")  # fmt: skip
    return 0


def _fail(message: str, code: int = 1) -> int:
    print(f"skyline nab: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    if args.detector is not None and args.detector not in DETECTORS:
        return _fail(f"unknown detector {args.detector!r}; known: {', '.join(DETECTORS)}", 2)
    if not runner.corpus_files(args.data):
        return _fail(f"no <category>/<file>.csv under {args.data}", 2)
    started = time.monotonic()
    if args.detector is None:
        try:
            threshold = load_settings(args.config).analyzer.threshold
        except SettingsError as exc:
            return _fail(str(exc), 2)
        name, written = runner.run_analyzer_detector(args.data, args.out, threshold, args.labels)
        note = f" ([analyzer] threshold {threshold})"
    else:
        name, note = args.detector, ""
        written = runner.run_corpus(args.data, args.out, name, args.labels, args.jobs)
    took = time.monotonic() - started
    print(f"{name}: {len(written)} files -> {args.out / name} in {took:.1f} s{note}")
    return 0


def read_results(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(unix timestamps, anomaly scores) of one results file."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    stamps = runner.to_unix([r["timestamp"] for r in rows])
    scores = np.array([float(r["anomaly_score"] or "nan") for r in rows])
    return stamps, scores


def load_cases(results: Path, data: Path, detector: str, labels: Path) -> list[scoring.FileCase]:
    windows = runner.load_windows(labels)
    cases = []
    for name in runner.corpus_files(data):
        path = runner.result_path(results, detector, name)
        if not path.exists():
            raise FileNotFoundError(f"missing results file {path}")
        stamps, scores = read_results(path)
        cases.append(scoring.prepare(name, stamps, scores, windows.get(name, [])))
    return cases


def cmd_score(args: argparse.Namespace) -> int:
    if not args.labels.exists():
        return _fail(f"no labels file {args.labels}", 2)
    try:
        cases = load_cases(args.results, args.data, args.detector, args.labels)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    if not cases:
        return _fail(f"no <category>/<file>.csv under {args.data}", 2)
    report = {"detector": args.detector, **scoring.score_corpus(cases)}
    threshold = args.threshold
    meta = args.results / args.detector / "run.json"
    if threshold is None and meta.exists():
        threshold = json.loads(meta.read_text()).get("threshold")
    if threshold is not None:
        for pname, profile in scoring.PROFILES.items():
            fixed = crossval.fixed(cases, float(threshold), profile)
            report["profiles"][pname]["fixed_threshold"] = fixed
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    else:
        print(text)
    summary = ", ".join(
        f"{p} {v['score']:.1f}"
        + (f" (at {v['fixed_threshold']['threshold']}: {v['fixed_threshold']['score']:.1f})"
           if "fixed_threshold" in v else "")
        for p, v in report["profiles"].items()
    )  # fmt: skip
    print(f"{args.detector}: {summary}", file=sys.stderr if not args.out else sys.stdout)
    return 0


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="skyline")
        register(parser.add_subparsers(dest="command", required=True))
        argv = list(sys.argv[1:] if args is None else args)
        args = parser.parse_args(argv if argv[:1] == ["nab"] else ["nab", *argv])
    commands = {"run": cmd_run, "score": cmd_score, "cv": cmd_cv}
    return commands[args.nab_command](args)
