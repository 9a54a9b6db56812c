"""Run a streaming detector over a NAB-layout corpus and write NAB results files.

Corpus: ``DATA/<category>/<file>.csv`` with columns ``timestamp,value``
(``YYYY-MM-DD HH:MM:SS``, treated as UTC).  Results:
``OUT/<detector>/<category>/<detector>_<file>.csv`` with columns
``timestamp,value,anomaly_score,label``.  Each file gets a fresh detector and is fed
one row at a time, score before learn.

Without a detector name, the corpus is run through exactly what the analyzer runs in
``[analyzer] mode = "default"``: ``default_vector_detector()`` driven by
``score_points``, every file a metric with a fresh state, all files stepped
together (the analyzer's path for a batch of points), and
``OUT/<detector>/run.json`` records the analyzer's threshold for ``nab score``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skyline.analysis.algorithms.stepping import default_vector_detector, score_points
from skyline.analysis.algorithms.streaming import DETECTORS, NEUTRAL_SCORE, make_detector


@dataclass
class Series:
    name: str  # "<category>/<file>.csv", the key used in the labels file
    stamps: list[str]  # timestamps as written in the file
    raw_values: list[str]  # values as written in the file
    timestamps: np.ndarray  # unix seconds (UTC)
    values: np.ndarray  # float values (unparseable -> NaN)


def to_unix(stamps: Iterable[str]) -> np.ndarray:
    """Unix seconds of ``YYYY-MM-DD HH:MM:SS[.ffffff]`` strings read as UTC."""
    idx = pd.to_datetime(pd.Series(list(stamps), dtype=object), format="ISO8601", utc=True)
    # by elapsed time, not int64 ticks: pandas 3 may pick microsecond resolution
    return ((idx - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)


def corpus_files(data_dir: Path) -> list[str]:
    """Relative names ``<category>/<file>.csv`` of a corpus, sorted."""
    return sorted(
        f"{p.parent.name}/{p.name}" for p in Path(data_dir).glob("*/*.csv") if p.is_file()
    )


def read_series(data_dir: Path, name: str) -> Series:
    with open(Path(data_dir) / name, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        ti, vi = header.index("timestamp"), header.index("value")
        stamps, raw = [], []
        for row in reader:
            if len(row) > max(ti, vi):
                stamps.append(row[ti].strip())
                raw.append(row[vi].strip())
    values = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float)
    return Series(name, stamps, raw, to_unix(stamps), values)


def load_windows(labels_file: Path | None) -> dict[str, list[tuple[float, float]]]:
    """``{"<category>/<file>.csv": [(start, end), ...]}`` in unix seconds."""
    if labels_file is None or not Path(labels_file).exists():
        return {}
    with open(labels_file) as fh:
        raw = json.load(fh)
    out = {}
    for name, windows in raw.items():
        flat = [t for w in windows for t in w]
        secs = to_unix(flat) if flat else np.zeros(0)
        out[name] = [(float(secs[2 * k]), float(secs[2 * k + 1])) for k in range(len(windows))]
    return out


def default_labels(data_dir: Path) -> Path:
    return Path(data_dir).resolve().parent / "labels" / "combined_windows.json"


def labels_column(timestamps: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    label = np.zeros(len(timestamps), dtype=np.int64)
    for start, end in windows:
        label[(timestamps >= start) & (timestamps <= end)] = 1
    return label


def score_series(detector_name: str, timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Scores of one series by a fresh detector, strictly one row at a time."""
    det = make_detector(detector_name)
    out = np.empty(len(values))
    for i, (t, v) in enumerate(zip(timestamps.tolist(), values.tolist(), strict=True)):
        s = det.score_one(t, v)
        out[i] = s if isinstance(s, float | int) and math.isfinite(s) else NEUTRAL_SCORE
        det.learn_one(t, v)
    return np.clip(out, 0.0, 1.0)


def result_path(out_dir: Path, detector_name: str, name: str) -> Path:
    category, fname = name.split("/", 1)
    return Path(out_dir) / detector_name / category / f"{detector_name}_{fname}"


def run_file(
    data_dir: str, out_dir: str, detector_name: str, name: str, windows: list[tuple[float, float]]
) -> str:
    """Score one corpus file and write its results file; returns the path written."""
    series = read_series(Path(data_dir), name)
    scores = score_series(detector_name, series.timestamps, series.values)
    return write_results(Path(out_dir), detector_name, series, scores, windows)


def write_results(out_dir: Path, detector_name: str, series: Series, scores: np.ndarray,
                  windows: list[tuple[float, float]]) -> str:  # fmt: skip
    label = labels_column(series.timestamps, windows)
    path = result_path(Path(out_dir), detector_name, series.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        for row in zip(
            series.stamps, series.raw_values, scores.tolist(), label.tolist(), strict=True
        ):
            w.writerow(row)
    os.replace(tmp, path)
    return str(path)


def analyzer_scores(data_dir: Path) -> tuple[str, list[Series], list[np.ndarray]]:
    """The analyzer's detector over every file of the corpus, all files stepped
    together (each a metric with a fresh state): (detector name, series, scores)."""
    detector = default_vector_detector()
    series = [read_series(Path(data_dir), name) for name in corpus_files(Path(data_dir))]
    state = detector.new_state(len(series))
    raw = score_points(detector, state, [s.timestamps for s in series],
                       [s.values for s in series])  # fmt: skip
    scores = [np.clip(np.nan_to_num(r, nan=NEUTRAL_SCORE), 0.0, 1.0) for r in raw]
    return detector.name, series, scores


def run_analyzer_detector(
    data_dir: Path, out_dir: Path, threshold: float, labels_file: Path | None = None
) -> tuple[str, list[str]]:
    """Run the analyzer's detector over the corpus (see the module docstring); returns
    the detector's name and the files written."""
    windows = load_windows(labels_file if labels_file is not None else default_labels(data_dir))
    name, series, scores = analyzer_scores(data_dir)
    written = [write_results(Path(out_dir), name, s, sc, windows.get(s.name, []))
               for s, sc in zip(series, scores, strict=True)]  # fmt: skip
    meta = {"detector": name, "threshold": threshold, "source": "[analyzer] threshold"}
    (Path(out_dir) / name / "run.json").write_text(json.dumps(meta) + "\n")
    return name, written


def _run_task(task: tuple) -> str:
    return run_file(*task)


def run_corpus(
    data_dir: Path,
    out_dir: Path,
    detector_name: str = "default",
    labels_file: Path | None = None,
    jobs: int = 1,
) -> list[str]:
    """Run ``detector_name`` over every file of the corpus; returns the files written."""
    if detector_name not in DETECTORS:
        make_detector(detector_name)  # raises KeyError naming the known detectors
    windows = load_windows(labels_file if labels_file is not None else default_labels(data_dir))
    tasks = [
        (str(data_dir), str(out_dir), detector_name, name, windows.get(name, []))
        for name in corpus_files(Path(data_dir))
    ]
    if jobs <= 1 or len(tasks) <= 1:
        return [_run_task(t) for t in tasks]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
        return list(pool.imap(_run_task, tasks, chunksize=1))
