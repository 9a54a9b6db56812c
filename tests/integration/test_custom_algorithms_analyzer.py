"""Custom algorithms inside the analyzer, on a real Redis: a spike flagged by one, an
erring one and a hung one counted and skipped while every other metric is analysed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from skyline.analysis.algorithms import EnsembleOptions
from skyline.analysis.analyzer.agent import Analyzer
from skyline.analysis.analyzer.analysis import (
    analyse,
    load_customs,
    publish_custom_counts,
)
from skyline.events.anomaly import read_all
from skyline.runtime.daemon import Counters, StartupError
from skyline.store.timeseries import to_series
from tests.conftest import wait_for

STEP = 60
ALGOS = """
import time

def level(timestamps, values, parameters):
    return bool(values[-1] > parameters["limit"]), float(values[-1])

def boom(timestamps, values, parameters):
    raise RuntimeError("boom")

def forever(timestamps, values, parameters):
    time.sleep(3600)
"""


def conf(tmp_path: Path, consensus: int = 1) -> Path:
    src = tmp_path / "algos.py"
    src.write_text(ALGOS)
    p = tmp_path / "skyline.conf"
    p.write_text(
        f'[[custom_algorithms]]\nname = "level"\nsource = "{src}"\nnamespaces = ["shop."]\n'
        f"parameters = {{limit = 150.0}}\nconsensus = {consensus}\n"
        f'[[custom_algorithms]]\nname = "boom"\nsource = "{src}"\nrun_before_3sigma = true\n'
        f'[[custom_algorithms]]\nname = "forever"\nsource = "{src}"\nmax_execution_time = 0.05\n'
    )
    return p


def seed(store, names, end: int, last: float | None = None) -> None:
    rng = np.random.default_rng(4)
    ts = end - STEP * np.arange(600)[::-1]
    for name in names:
        vs = 100 + rng.normal(0, 1, len(ts))
        if last is not None:
            vs[-1] = last
        store.append_grouped({name: (ts.tolist(), vs.tolist())})


class Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, fmt: str, *args: object) -> None:
        self.warnings.append(fmt % args)


def test_analyse_with_custom_algorithms_from_the_store(make_settings, tmp_path):
    settings = make_settings(conf(tmp_path))
    daemon = Analyzer(settings)  # only for its store; not run
    end = int(time.time()) - STEP
    seed(daemon.store, [f"calm.{i}" for i in range(20)], end)
    seed(daemon.store, ["shop.orders"], end, last=160.0)  # above level's limit, no 3-sigma spike
    names = daemon.store.metrics()
    series = {
        m: to_series(b) for m, b in zip(names, daemon.store.read_raw_many(names), strict=True)
    }
    customs = load_customs(settings)
    try:
        t0 = time.monotonic()
        verdicts, _ = analyse(series, time.time(), EnsembleOptions.from_settings(settings.analyzer),
                              True, customs)  # fmt: skip
        took = time.monotonic() - t0
        counters, log = Counters(), Log()
        publish_custom_counts(customs, counters, log)
    finally:
        customs.close()
    shop = verdicts["shop.orders"]
    assert shop.anomalous and "level" in shop.triggered  # consensus 1: it decides alone
    assert shop.run[0] == "boom" and shop.votes["boom"] is None
    assert len(verdicts) == 21 and not any(verdicts[f"calm.{i}"].anomalous for i in range(20))
    c = counters.peek()
    assert c["custom_algorithms.errors.boom"] == 21
    assert c["custom_algorithms.timeouts.forever"] == 3  # then suspended
    assert c["custom_algorithms.skipped.forever"] == 18
    assert any("timeouts.forever=3" in w for w in log.warnings)
    assert took < 5
    print(f"21 metrics with 3 custom algorithms (one hung): {took:.3f} s")


def test_a_file_that_fails_to_import_stops_the_start(make_settings, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import nonexistent_module_xyz\n")
    p = tmp_path / "skyline.conf"
    p.write_text(f'[[custom_algorithms]]\nname = "bad"\nsource = "{bad}"\n')
    with pytest.raises(StartupError, match=r"#1 \(name 'bad'\).*bad.py.*ModuleNotFoundError"):
        load_customs(make_settings(p))


@pytest.mark.parametrize("mode", ["classic", "default"])  # default: evidence on flagged points
def test_the_analyzer_daemon_runs_custom_algorithms(make_settings, tmp_path, redis_client, mode):
    settings = make_settings(conf(tmp_path), SKYLINE__ANALYZER__INTERVAL="3600",
                             SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.05",
                             SKYLINE__ANALYZER__MODE=mode)  # fmt: skip
    daemon = Analyzer(settings)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: daemon.counters.peek().get("sweep_runs"))
        if getattr(daemon, "customs", None) is None:
            pytest.skip("skyline/analysis/analyzer/agent.py does not load custom algorithms yet")
        end = int(time.time()) - STEP
        seed(daemon.store, [f"calm.{i}" for i in range(10)], end)
        seed(daemon.store, ["shop.orders"], end, last=160.0)
        redis_client.sadd(daemon.keys.changed(), "shop.orders", *[f"calm.{i}" for i in range(10)])
        events = wait_for(lambda: read_all(redis_client, daemon.keys), timeout=10)
        wait_for(lambda: daemon.counters.peek().get("total_analyzed", 0) >= 11)
        c = daemon.counters.peek()
    finally:
        daemon.stop()
        thread.join(10)
    assert [e.metric for e in events] == ["shop.orders"] and "level" in events[0].triggered
    assert c.get("custom_algorithms.timeouts.forever", 0) >= 1
    assert c.get("custom_algorithms.errors.boom", 0) >= 1
