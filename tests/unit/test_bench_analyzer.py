"""The analyzer benchmark (utils/bench/analyzer.py) runs the daemon's own pass and
names the baseline it compared against."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "utils" / "bench" / "analyzer.py"
TINY = ["--metrics", "40", "--points", "200", "--per-series", "12", "--reps", "1", "--json"]

FAKE_EARTHGECKO = """
class Stale(Exception):
    pass


def run_selected_algorithm(timeseries, metric_name, metric_airgapped, airgapped_metrics):
    assert isinstance(timeseries, list) and len(timeseries[0]) == 2
    assert metric_airgapped is False and airgapped_metrics == []
    if metric_name.endswith("1"):
        raise Stale()
    return metric_name.endswith("2"), [True], timeseries[-1][1]
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH.parent))  # as running the script does, for benchkit
    spec = importlib.util.spec_from_file_location("skyline_bench_analyzer", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_tiny(bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys, *extra: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="sb-", dir="/tmp") as tmp:
        monkeypatch.setattr(tempfile, "tempdir", tmp)  # the embedded Redis lives here
        returned = bench.main([*TINY, *extra])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["metrics_per_s"] == pytest.approx(returned["metrics_per_s"], rel=1e-3)
    assert not any(line.lstrip().startswith("{") for line in lines[:-1])
    assert lines[0] == f"baseline: {figures['baseline']}"
    return figures


def test_tiny_run_times_the_daemon_pass_against_our_per_series_baseline(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = run_tiny(bench, monkeypatch, capsys)
    assert figures["baseline"] == bench.OWN_BASELINE
    assert figures["mode"] == "classic" and figures["baseline_metrics"] == 12
    assert figures["counters"] > 0  # counter detection ran on the daemon's path
    assert figures["anomalous"] == figures["anomalous_verdicts"]
    for key in ("sweep", "read_many", "analyse", "per_series", "baseline"):
        assert figures[f"{key}_metrics_per_s"] > 0, key
    assert figures["sweep_vs_baseline"] == pytest.approx(
        figures["sweep_metrics_per_s"] / figures["baseline_metrics_per_s"], rel=1e-2, abs=1e-3
    )  # the JSON rounds to 3 decimals


def test_earthgecko_directory_is_the_baseline_when_given(
    bench: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    analyzer_dir = tmp_path / "skyline" / "analyzer"
    analyzer_dir.mkdir(parents=True)
    (analyzer_dir / "algorithms.py").write_text(FAKE_EARTHGECKO)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "algorithms", raising=False)
    figures = run_tiny(bench, monkeypatch, capsys, "--earthgecko", str(analyzer_dir))
    sys.modules.pop("algorithms", None)
    assert figures["baseline"] == bench.EARTHGECKO_BASELINE
    outcomes = figures["earthgecko_outcomes"]
    assert sum(outcomes.values()) == 12  # bench.metric.0 ... bench.metric.11
    assert outcomes["Stale"] == 2 and outcomes["anomalous"] == 1  # .1 and .11; .2
    assert figures["earthgecko_metrics_per_s"] == figures["baseline_metrics_per_s"] > 0
    assert figures["per_series_metrics_per_s"] > 0  # ours is reported beside it


def test_a_directory_without_algorithms_is_refused(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no algorithms.py"):
        bench.load_earthgecko(str(tmp_path))


def test_steady_state_is_sealed_series_of_several_lengths_ending_at_their_last_point(
    bench: ModuleType, redis_client
) -> None:
    """What the daemon finds between two roomba rewrites: a sealed block, then a few
    raw records, so the series differ in length; every point is kept, in order."""
    from skyline.store.keys import RedisKeys
    from skyline.store.sealed import is_sealed
    from skyline.store.timeseries import TimeSeriesStore

    store = TimeSeriesStore(redis_client, RedisKeys())
    names = [f"bench.metric.{i}" for i in range(40)]
    t, v = bench.synthetic(40, 60 + 11, 1_800_000_000)
    bench.seed_steady(store, names, t, v, 60, 1_800_000_000)
    raws = store.read_raw_many(names)
    assert all(raw and is_sealed(raw) for raw in raws)
    got = store.read_many(names)
    lengths = {len(s) for s in got.values()}
    assert min(lengths) == 60 and max(lengths) <= 71 and len(lengths) > 3
    for i, name in enumerate(names):
        n = len(got[name])
        assert got[name].timestamps.tolist() == t[i, -n:].tolist()
        assert got[name].values.tolist() == v[i, -n:].tolist()
    points = sum(len(s) for s in got.values())
    assert sum(len(raw) for raw in raws) < 12 * points  # the sealed points are compressed


def test_fresh_state_is_raw_records_of_one_length(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    steady = run_tiny(bench, monkeypatch, capsys)
    fresh = run_tiny(bench, monkeypatch, capsys, "--state", "fresh")
    assert steady["state"] == "steady" and fresh["state"] == "fresh"
    assert fresh["counters"] > 0 and fresh["sweep_metrics_per_s"] > 0
