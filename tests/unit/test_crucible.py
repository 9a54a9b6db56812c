"""skyline crucible: report.json and plot.png from a CSV file or a stored metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skyline.analysis.crucible import cli as crucible_cli
from skyline.analysis.crucible.report import read_csv
from skyline.cli.main import build_parser
from skyline.settings import load_settings

NAB = Path("/work/shared/nab/data/realTraffic/speed_7578.csv")
PNG = b"\x89PNG\r\n\x1a\n"


def crucible(settings, *argv: str) -> int:
    import argparse

    p = argparse.ArgumentParser()
    crucible_cli.register(p.add_subparsers(dest="command"))
    return crucible_cli.run(p.parse_args(["crucible", *argv]), settings)


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path / "var")})


def spike_csv(tmp_path: Path, n: int = 500, at: int = 400, header: bool = True) -> Path:
    rng = np.random.default_rng(2)
    v = 50 + rng.normal(0, 1, n)
    v[at] = 120.0
    lines = ["timestamp,value"] if header else []
    lines += [f"{1_600_000_000 + 60 * i},{x:.4f}" for i, x in enumerate(v)]
    p = tmp_path / "spike.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def report(out: Path) -> dict:
    assert (out / "plot.png").read_bytes()[:8] == PNG
    return json.loads((out / "report.json").read_text())


def test_a_spike_is_anomalous_and_flagged(tmp_path, settings, capsys):
    src = spike_csv(tmp_path, at=499)  # the newest point
    assert crucible(settings, str(src), "--out", str(tmp_path / "o")) == 0
    r = report(tmp_path / "o")
    ens = r["ensemble"]
    assert ens["anomalous"] is True and ens["consensus"] == 6 and len(ens["triggered"]) >= 6
    assert set(r["algorithms"]) >= {"grubbs", "histogram_bins", "least_squares"}
    for a in r["algorithms"].values():
        assert a["anomalous"] in (True, False, None) and isinstance(a["score"], float | None)
    walk = r["walk"]
    assert 499 in [a["index"] for a in walk["anomalies"]]
    assert r["input"]["points"] == 500 and r["input"]["bad_rows"] == 0
    assert r["mode"] == "default" and r["algorithms_run"] == ens["run"]
    assert {"read_s", "last_point_s", "walk_s", "plot_s", "total_s"} <= set(r["timings"])
    assert "newest point anomalous" in capsys.readouterr().out


def test_walk_forward_flags_an_earlier_spike_and_not_much_else(tmp_path, settings):
    src = spike_csv(tmp_path, at=300, header=False)
    assert crucible(settings, str(src), "--out", str(tmp_path / "o"), "--window", "200") == 0
    r = report(tmp_path / "o")
    flagged = [a["index"] for a in r["walk"]["anomalies"]]
    assert 300 in flagged and len(flagged) <= 5
    assert r["walk"]["evaluated"] == 401 and r["walk"]["window_points"] == 200
    assert r["ensemble"]["anomalous"] is False


@pytest.mark.skipif(not NAB.is_file(), reason="NAB corpus not present")
@pytest.mark.parametrize("mode", ["classic", "default"])
def test_a_nab_file_in_both_modes(tmp_path, settings, mode):
    out = tmp_path / mode
    assert crucible(settings, str(NAB), "--out", str(out), "--mode", mode, "--json") == 0
    r = report(out)
    assert r["mode"] == mode and r["input"]["points"] > 1000
    assert r["walk"]["evaluated"] == r["input"]["points"] - 99
    assert all(isinstance(a["timestamp"], int) for a in r["walk"]["anomalies"])


def test_classic_and_default_can_differ_but_share_the_format(tmp_path, settings):
    src = spike_csv(tmp_path, at=499)
    for mode in ("classic", "default"):
        assert crucible(settings, str(src), "--out", str(tmp_path / mode), "--mode", mode) == 0
    a, b = report(tmp_path / "classic"), report(tmp_path / "default")
    assert a["mode"] == "classic" and b["mode"] == "default"
    assert set(a["algorithms"]) == set(b["algorithms"]) and a["ensemble"]["anomalous"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("timestamp,value\n", "no valid"),
        ("garbage\n\x00\x01zz,yy\nmore garbage,,\n", "no valid"),
        ("1,nan\n2,NaN\n3,inf\n", "no valid"),
    ],
)
def test_hostile_csvs_fail_with_one_line_and_status_2(tmp_path, settings, capsys, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    assert crucible(settings, str(p), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not (tmp_path / "o").exists()


def test_missing_file(tmp_path, settings, capsys):
    assert crucible(settings, str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_rows_are_skipped_and_counted(tmp_path, settings):
    src = spike_csv(tmp_path, at=250)
    src.write_text(src.read_text() + "oops,1\n1600100000,nan\n1600100060\n")
    data = read_csv(src)
    assert data.bad_rows == 3 and len(data.series) == 500 and data.rows == 503
    assert crucible(settings, str(src), "--out", str(tmp_path / "o"), "--no-walk") == 0
    r = report(tmp_path / "o")
    assert r["input"]["bad_rows"] == 3 and len(r["input"]["bad_row_examples"]) == 3
    assert "walk" not in r


def test_one_row_is_reported_as_too_short(tmp_path, settings):
    p = tmp_path / "one.csv"
    p.write_text("2015-07-10 14:24:00,564\n")
    assert crucible(settings, str(p), "--out", str(tmp_path / "o")) == 0
    r = report(tmp_path / "o")
    assert r["ensemble"]["anomalous"] is None and r["ensemble"]["skip"] == "TooShort"
    assert r["input"]["first_timestamp"] == 1436538240
    assert r["walk"]["evaluated"] == 0


def test_custom_algorithms_are_in_the_report(tmp_path):
    algo = tmp_path / "a.py"
    algo.write_text("def high(t, v, p):\n    return bool(v[-1] > p['limit']), float(v[-1])\n")
    conf = tmp_path / "skyline.conf"
    conf.write_text(f'[[custom_algorithms]]\nname = "high"\nsource = "{algo}"\n'
                    'namespaces = ["only.this"]\nparameters = {limit = 100.0}\nconsensus = 1\n')  # fmt: skip
    settings = load_settings(conf, env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path / "var")})
    src = spike_csv(tmp_path, at=300)
    assert crucible(settings, str(src), "--out", str(tmp_path / "o")) == 0
    r = report(tmp_path / "o")
    assert r["custom_algorithms"] == ["high"] and r["algorithms"]["high"]["anomalous"] is False
    assert "high" in r["algorithms_run"]
    assert any("high" in a["triggered"] for a in r["walk"]["anomalies"] if a["index"] == 300)
    assert r["custom_counts"]["calls.high"] >= 401


def test_a_metric_from_redis(tmp_path, make_settings, redis_client):
    from skyline.store.connection import connect
    from skyline.store.keys import RedisKeys
    from skyline.store.timeseries import TimeSeriesStore

    settings = make_settings()
    store = TimeSeriesStore(connect(settings), RedisKeys(settings.redis.prefix))
    rng = np.random.default_rng(8)
    ts = 1_700_000_000 + 60 * np.arange(400)
    vs = 10 + rng.normal(0, 1, 400)
    vs[-1] = 90.0
    store.append_grouped({"web.latency": (ts.tolist(), vs.tolist())})
    assert crucible(settings, "web.latency", "--out", str(tmp_path / "o")) == 0
    r = report(tmp_path / "o")
    assert r["input"] == r["input"] | {"kind": "metric", "source": "web.latency", "points": 400}
    assert r["ensemble"]["anomalous"] is True and r["ensemble"]["timestamp"] == int(ts[-1])
    assert crucible(settings, "no.such.metric", "--out", str(tmp_path / "p")) == 2


def test_the_cli_parser_accepts_the_contract():
    if "crucible" not in build_parser()._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        pytest.skip("skyline/cli/main.py does not register crucible yet")
    args = build_parser().parse_args(["crucible", "x.csv", "--out", "d", "--mode", "classic"])
    assert args.source == "x.csv" and args.mode == "classic"
