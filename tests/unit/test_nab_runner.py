"""The NAB runner on a tiny corpus written to tmp_path (real files, real detectors)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyline.analysis.algorithms import streaming
from skyline.analysis.nab import runner

ROWS = {
    "catA/one.csv": [("2015-01-01 00:00:00", "1"), ("2015-01-01 00:05:00", "2.5"),
                     ("2015-01-01 00:10:00", "3"), ("2015-01-01 00:15:00", "4"),
                     ("2015-01-01 00:20:00", "5")],
    "catB/two.csv": [("2016-06-01 12:00:00", "10"), ("2016-06-01 13:00:00", "20"),
                     ("2016-06-01 14:00:00", "30")],
}  # fmt: skip
WINDOWS = {
    "catA/one.csv": [["2015-01-01 00:05:00.000000", "2015-01-01 00:10:00.000000"]],
    "catB/two.csv": [],
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, rows in ROWS.items():
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            w.writerows(rows)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(WINDOWS))
    return tmp_path / "data"


class Recorder:
    """Checks the streaming contract as it is driven, and keeps what it saw."""

    instances: list[Recorder] = []

    def __init__(self) -> None:
        self.learned: list[tuple[float, float]] = []
        self.calls: list[str] = []
        Recorder.instances.append(self)

    def score_one(self, timestamp: float, value: float) -> float:
        self.calls.append("score")
        # never seen this row or any later one yet
        assert all(t < timestamp for t, _ in self.learned)
        return len(self.learned) / 10.0

    def learn_one(self, timestamp: float, value: float) -> None:
        self.calls.append("learn")
        self.learned.append((timestamp, value))


@pytest.fixture
def recorder():
    Recorder.instances = []
    streaming.register("recorder", Recorder)
    yield Recorder
    streaming.DETECTORS.pop("recorder", None)


def read(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_layout_columns_and_labels(corpus: Path, tmp_path: Path, recorder) -> None:
    out = tmp_path / "results"
    written = runner.run_corpus(corpus, out, "recorder")
    assert sorted(written) == sorted(
        [str(out / "recorder/catA/recorder_one.csv"), str(out / "recorder/catB/recorder_two.csv")]
    )
    one = read(out / "recorder/catA/recorder_one.csv")
    assert one[0] == ["timestamp", "value", "anomaly_score", "label"]
    assert [r[0] for r in one[1:]] == [r[0] for r in ROWS["catA/one.csv"]]
    assert [r[1] for r in one[1:]] == [r[1] for r in ROWS["catA/one.csv"]]
    assert [r[3] for r in one[1:]] == ["0", "1", "1", "0", "0"]
    # score of row i = i / 10: the detector had learned exactly the rows before it
    assert [float(r[2]) for r in one[1:]] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    two = read(out / "recorder/catB/recorder_two.csv")
    assert [r[3] for r in two[1:]] == ["0", "0", "0"]
    assert [float(r[2]) for r in two[1:]] == pytest.approx([0.0, 0.1, 0.2])


def test_score_before_learn_and_fresh_state_per_file(corpus: Path, tmp_path: Path, recorder):
    runner.run_corpus(corpus, tmp_path / "results", "recorder")
    assert len(recorder.instances) == 2
    for inst, name in zip(recorder.instances, sorted(ROWS), strict=True):
        rows = ROWS[name]
        assert inst.calls == ["score", "learn"] * len(rows)
        assert [v for _, v in inst.learned] == [float(v) for _, v in rows]
        expected = runner.to_unix([t for t, _ in rows]).tolist()
        assert [t for t, _ in inst.learned] == expected


def test_timestamps_are_utc() -> None:
    assert runner.to_unix(["1970-01-02 00:00:00", "2015-01-01 00:05:00.000000"]).tolist() == [
        86400.0,
        1420070700.0,
    ]


def test_cli_run_and_score_end_to_end(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    repo = Path(__file__).resolve().parents[2]
    run = [
        sys.executable,
        "-m",
        "skyline.analysis.nab",
        "run",
        "--data",
        str(corpus),
        "--out",
        str(out),
    ]
    for det in ("null", "spike_level"):
        subprocess.run([*run, "--detector", det, "--jobs", "2"], check=True, cwd=repo, env=env)
        assert (out / det / "catB" / f"{det}_two.csv").exists()
    report_path = tmp_path / "null.json"
    labels = corpus.parent / "labels" / "combined_windows.json"
    subprocess.run(
        [sys.executable, "-m", "skyline.analysis.nab", "score", "--results", str(out), "--labels",
         str(labels), "--data", str(corpus), "--detector", "null", "--out", str(report_path)],
        check=True, cwd=repo, env=env, capture_output=True,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    assert report["detector"] == "null"
    assert report["windows"] == 1
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        # all-zero scores: the sweep may pick threshold 0 (detect every row), which on
        # this 8-row corpus pays; on a real corpus it is the null detector's 0
        assert report["profiles"][profile]["threshold"] in (0.0, 1.1)
        assert set(report["profiles"][profile]["files"]) == set(ROWS)
        for key in ("score", "raw", "null_raw", "perfect_raw", "weights"):
            assert key in report["profiles"][profile]


def test_unknown_detector_is_bad_usage(corpus: Path, tmp_path: Path) -> None:
    from skyline.analysis.nab.cli import main

    code = main(["run", "--data", str(corpus), "--out", str(tmp_path), "--detector", "nope"])
    assert code == 2


def test_without_a_detector_it_runs_the_analyzers_detector_and_threshold(
    corpus: Path, tmp_path: Path
) -> None:
    from skyline.analysis.nab.cli import main

    conf = tmp_path / "skyline.conf"
    conf.write_text("[analyzer]\nthreshold = 0.42\n")
    out = tmp_path / "results"
    assert main(["run", "--data", str(corpus), "--out", str(out), "--config", str(conf)]) == 0
    run_meta = json.loads((out / "spike_level" / "run.json").read_text())
    assert run_meta["threshold"] == 0.42 and run_meta["detector"] == "spike_level"
    # the same scores as the streaming registry's one-series adapter of that detector
    scores = list(runner.score_series("spike_level", *_two(corpus)))
    with open(out / "spike_level" / "catB" / "spike_level_two.csv", newline="") as fh:
        written = [float(r["anomaly_score"]) for r in csv.DictReader(fh)]
    assert written == scores
    labels = corpus.parent / "labels" / "combined_windows.json"
    report_path = tmp_path / "report.json"
    args = ["score", "--results", str(out), "--labels", str(labels), "--data", str(corpus),
            "--out", str(report_path)]  # fmt: skip
    assert main(args) == 0
    report = json.loads(report_path.read_text())
    assert report["profiles"]["standard"]["fixed_threshold"]["threshold"] == 0.42
    cv_path = tmp_path / "cv.json"
    cv = ["cv", "--data", str(corpus), "--labels", str(labels), "--config", str(conf),
          "--out", str(cv_path)]  # fmt: skip
    assert main(cv) == 0
    rows = json.loads(cv_path.read_text())["profiles"]["standard"]
    for key in ("shipped_in_sample", "shipped_fixed_threshold", "shipped_cross_validated"):
        assert "score" in rows[key]


def _two(corpus: Path):
    s = runner.read_series(corpus, "catB/two.csv")
    return s.timestamps, s.values


def test_variant_selection_tool(corpus: Path, capsys) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "utils"))
    try:
        import nab_select
    finally:
        sys.path.pop(0)
    assert nab_select.main(["--data", str(corpus), "--nested", "{}", "{'burn_in': 10}"]) == 0
    out = capsys.readouterr().out
    assert "{'burn_in': 10}: width" in out and "selection CV standard" in out
    assert "nested CV standard" in out
    with pytest.raises(SystemExit):
        nab_select.main(["--data", str(corpus), "[1, 2]"])


def test_research_probe_tool(corpus: Path, capsys) -> None:
    """The probes run, and ``base()`` scores what the selection tool scores for
    the default variant (the same detector through the same harness)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "utils"))
    try:
        import nab_select
        import spike_level_probes
    finally:
        sys.path.pop(0)
    probes = ["base()", "params(floor=4.5)", "slow(half_life=5000, c=0.85)", "soft(eta=0.5)",
              "short(c=0.7, blocks=2)", "counts('anscombe')", "counts('log1p', max_median=20)",
              "time(seconds=3000)", "gaps('min')", "gaps('median', floor=False, cap=10)",
              "zdecay(half_life=300)", "vol(w=4)", "power(3)", "recurnopeak()"]  # fmt: skip
    argv = ["--data", str(corpus), "--params", "{'gap_window': 0}", "--select", *probes]
    assert spike_level_probes.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines[: len(probes)]] == probes
    assert [ln.split(":")[0] for ln in lines[len(probes) :]] == [
        f"selection CV {name}" for name in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
    ]
    nab_select.main(["--data", str(corpus), "{'gap_window': 0}"])
    selected = capsys.readouterr().out
    base_standard = lines[0].split("standard ")[1].split(" /")[0]
    assert f"standard {base_standard} (thr" in selected
