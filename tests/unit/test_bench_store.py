"""The storage benchmark (utils/bench/store.py) runs, reports, and compares like with like."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import redis

from skyline.store.connection import EmbeddedRedis
from skyline.store.timeseries import encode, header

BENCH = Path(__file__).resolve().parents[2] / "utils" / "bench" / "store.py"
TINY = ["--metrics", "50", "--points", "100", "--seconds", "0.05", "--reps", "2",
        "--steady-metrics", "8", "--steady-hours", "1"]  # fmt: skip
HEADLINE_KEYS = {
    "records_bytes_per_point",
    "msgpack_bytes_per_point",
    "records_append_points_per_s",
    "msgpack_append_points_per_s",
    "records_append10_points_per_s",
    "msgpack_append10_points_per_s",
    "records_append_pipeline_points_per_s",
    "msgpack_append_pipeline_points_per_s",
    "records_mget_metrics_per_s",
    "msgpack_mget_metrics_per_s",
    "records_read_decode_metrics_per_s",
    "msgpack_read_decode_metrics_per_s",
    "records_decode_metrics_per_s",
    "msgpack_decode_metrics_per_s",
    "records_incremental_metrics_per_s",
    "records_read_many_metrics_per_s",
    "records_bulk_read_decode_metrics_per_s",
    "records_incremental_batched_metrics_per_s",
    "records_vs_msgpack_read_ratio",
    "records_vs_msgpack_decode_ratio",
    "records_vs_msgpack_append_ratio",
    "msgpack_vs_records_bytes_ratio",
}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("skyline_bench_store", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def embedded(bench: ModuleType, tmp_path: Path) -> Iterator[redis.Redis]:
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    client = redis.Redis(unix_socket_path=str(server.socket))
    try:
        yield client
    finally:
        client.close()
        bench.stop_embedded(server)


def test_tiny_run_prints_one_json_line_of_positive_figures(
    bench: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory(prefix="sb-", dir="/tmp") as tmp:
        monkeypatch.setattr(tempfile, "tempdir", tmp)  # the embedded Redis lives here
        returned = bench.main([*TINY, "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures == json.loads(json.dumps(returned))
    assert not HEADLINE_KEYS - figures.keys()
    assert figures["verified_identical"] is True
    assert figures["transport"].startswith("embedded")
    for key, value in figures.items():
        if key.endswith(("_per_s", "_per_point", "_ratio")):
            assert isinstance(value, int | float) and not isinstance(value, bool), key
            assert value > 0, key
    assert figures["records_bytes_per_point"] < figures["msgpack_bytes_per_point"]
    assert not any(line.lstrip().startswith("{") for line in lines[:-1])
    assert lines[0].startswith("Skyline storage benchmark")


def test_steady_run_measures_the_sealed_format_after_appends_and_roomba_passes(
    bench: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day appended raw and sealed, then two hours of minutely appends with a roomba
    pass each minute: every series is rewritten again (the window moves past the grace),
    the data read back is exactly what was appended, and the sizes are consistent."""
    with tempfile.TemporaryDirectory(prefix="sb-", dir="/tmp") as tmp:
        monkeypatch.setattr(tempfile, "tempdir", tmp)
        figures = bench.main(["--only", "steady", "--steady-metrics", "12", "--steady-hours",
                              "2", "--seconds", "0.05", "--reps", "1", "--json"])  # fmt: skip
    out = capsys.readouterr().out
    assert "Sealed format, steady state" in out and "records" not in out.split("\n")[0]
    assert figures["steady_verified_identical"] is True
    assert figures["steady_rewrites"] >= 12 * 2  # sealed once, then again as the window moves
    for kind in ("nab", "counter", "gauge", "noise", "realistic"):
        sealed = figures[f"sealed_bytes_per_point_{kind}"]
        strlen = figures[f"steady_strlen_bytes_per_point_{kind}"]
        live = figures[f"steady_live_bytes_per_point_{kind}_mean"]
        assert 0 < sealed < strlen < live <= figures[f"steady_live_bytes_per_point_{kind}_max"]
    assert figures["sealed_bytes_per_point_gauge"] < 4 < figures["sealed_bytes_per_point_noise"]
    assert figures["steady_read_many_metrics_per_s"] > 0
    assert figures["steady_read_since_many_metrics_per_s"] > 0


def test_both_formats_decode_the_seed_to_identical_arrays(
    bench: ModuleType, embedded: redis.Redis
) -> None:
    metrics = [bench.metric_name(i) for i in range(50)]
    end, seed, points = 1_790_000_040, 42, 100
    for fmt in bench.FORMATS:
        bench.seed(embedded, fmt, metrics, points, seed, end)
        assert bench.verify(embedded, fmt, metrics, points, seed, end)
    rec = embedded.mget([bench.series_key("records", m) for m in metrics])
    mp = embedded.mget([bench.series_key("msgpack", m) for m in metrics])
    for i, (a, b) in enumerate(zip(rec, mp, strict=True)):
        t_rec, v_rec = bench.decode_records(a)
        t_mp, v_mp = bench.decode_msgpack(b)
        t0, v0 = bench.make_series(seed, i, points, end)
        assert t_rec.dtype == t_mp.dtype == np.int64
        assert v_rec.dtype == v_mp.dtype == np.float64
        np.testing.assert_array_equal(t_rec, t_mp)
        np.testing.assert_array_equal(v_rec, v_mp)
        np.testing.assert_array_equal(t_rec, t0)
        np.testing.assert_array_equal(v_rec, v0)
        assert np.all(np.diff(t0) == 60) and t0[-1] == end
        assert len(np.unique(v0)) == points  # noisy floats, not small integers
    bench.delete_prefix(embedded)
    assert not list(embedded.scan_iter(match=bench.PREFIX + "*"))


def test_seed_is_deterministic(bench: ModuleType) -> None:
    a = bench.make_series(7, 3, 50, 1_790_000_040)
    b = bench.make_series(7, 3, 50, 1_790_000_040)
    c = bench.make_series(7, 4, 50, 1_790_000_040)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_proposed_bulk_decode_matches_the_store(bench: ModuleType) -> None:
    clean = encode([60, 120, 180], [1.0, 2.0, 3.0])
    bufs = [
        header(3) + clean,
        clean,
        None,
        b"",
        header(1),
        encode([180, 60, 120, 60], [3.0, 1.0, 2.0, 9.0]),  # unsorted, duplicate
        encode([60, 120], [1.0, float("nan")]),
        clean + b"\x01\x02",  # trailing partial record
        encode([300], [5.0]) + encode([240], [4.0]),  # only the boundary is out of order
    ]
    got = bench.proposed_decode_many(bufs)
    assert len(got) == len(bufs)
    for buf, series in zip(bufs, got, strict=True):
        want = bench.decode_records(buf) if buf else (np.empty(0, np.int64), np.empty(0))
        np.testing.assert_array_equal(series.timestamps, want[0])
        np.testing.assert_array_equal(series.values, want[1])
        assert series.timestamps.dtype == np.int64 and series.values.dtype == np.float64
