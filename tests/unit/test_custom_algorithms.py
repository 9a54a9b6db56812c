"""Custom algorithms: loading, the worker's time limits, and the consensus rules."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from skyline.analysis.algorithms import run_ensemble
from skyline.analysis.algorithms.custom import (
    CustomAlgorithmError,
    CustomRunner,
    run_many_with_custom,
    run_with_custom,
)
from skyline.settings import SettingsError, load_settings
from skyline.settings.algorithms import CustomAlgorithm
from skyline.store.timeseries import Series

NOW = 1_700_000_000
ALGOS = """
import time

def spike(timestamps, values, parameters):
    history = values[:-1]
    std = history.std()
    z = abs(values[-1] - history.mean()) / std if std else 0.0
    return bool(z > parameters.get("k", 5.0)), float(z)

def always(timestamps, values, parameters):
    return True, 1.0

def never(timestamps, values, parameters):
    return False, 0.0

def boom(timestamps, values, parameters):
    raise ValueError("boom")

def forever(timestamps, values, parameters):
    time.sleep(3600)

def stubborn(timestamps, values, parameters):
    while True:
        try:
            time.sleep(10)
        except BaseException:
            pass

def bad_return(timestamps, values, parameters):
    return "yes"
"""

OPTS = dict(consensus=6, mode="default", min_length=100, stale_period=500)


@pytest.fixture
def source(tmp_path: Path) -> str:
    p = tmp_path / "algos.py"
    p.write_text(ALGOS)
    return str(p)


def make(source: str, name: str, **kw) -> CustomAlgorithm:
    return CustomAlgorithm(name=name, source=source, **kw)


def series(n: int = 300, spike: float | None = None, seed: int = 1) -> Series:
    rng = np.random.default_rng(seed)
    ts = (NOW - 60 * np.arange(n)[::-1]).astype(np.int64)
    v = 100 + rng.normal(0, 1, n)
    if spike is not None:
        v[-1] = spike
    return Series(ts, v)


def test_a_spike_is_flagged_and_named_in_the_verdict(source):
    with CustomRunner([make(source, "spike")], "analyzer") as runner:
        v = run_with_custom(series(spike=200.0), now=NOW, runner=runner, metric="a.b", **OPTS)
        calm = run_with_custom(series(), now=NOW, runner=runner, metric="a.b", **OPTS)
    assert v.anomalous and "spike" in v.triggered and v.run[-1] == "spike"
    assert v.scores["spike"] > 50 and v.votes["spike"] is True
    assert not calm.anomalous and calm.votes["spike"] is False


def test_parameters_reach_the_function(source):
    c = make(source, "spike", parameters={"k": 1e9})
    with CustomRunner([c], "analyzer") as runner:
        v = run_with_custom(series(spike=200.0), now=NOW, runner=runner, metric="m", **OPTS)
    assert v.votes["spike"] is False


def test_errors_are_counted_and_vote_none(source):
    customs = [make(source, "boom"), make(source, "bad_return")]
    with CustomRunner(customs, "analyzer") as runner:
        v = run_with_custom(series(spike=200.0), now=NOW, runner=runner, metric="m", **OPTS)
        counts = runner.take_counts()
    assert v.votes["boom"] is None and v.votes["bad_return"] is None
    assert v.anomalous  # the ensemble still decides
    assert counts["errors.boom"] == 1 and counts["errors.bad_return"] == 1


def test_a_hung_function_is_cut_off_at_its_limit_and_the_rest_go_on(source):
    customs = [make(source, "forever", max_execution_time=0.05), make(source, "spike")]
    with CustomRunner(customs, "analyzer") as runner:
        t0 = time.monotonic()
        found = run_many_with_custom({f"m{i}": series(seed=i) for i in range(6)}, now=NOW,
                                     runner=runner, **OPTS)  # fmt: skip
        took = time.monotonic() - t0
        counts = runner.take_counts()
        # suspended now: further metrics do not wait for it at all
        t1 = time.monotonic()
        later = run_with_custom(series(spike=500.0), now=NOW, runner=runner, metric="x", **OPTS)
        assert time.monotonic() - t1 < 1.0
    assert counts["timeouts.forever"] == 3 and counts["skipped.forever"] == 3
    assert took < 3 * 0.05 + 1.0
    assert all(v.votes["spike"] is False for v in found.values())
    assert "forever" not in later.run and later.votes["spike"] is True


def test_a_function_that_swallows_the_alarm_is_killed(source):
    customs = [make(source, "stubborn", max_execution_time=0.05), make(source, "spike")]
    with CustomRunner(customs, "analyzer") as runner:
        v = run_with_custom(series(spike=200.0), now=NOW, runner=runner, metric="m", **OPTS)
        counts = runner.take_counts()
    assert v.votes["stubborn"] is None and v.votes["spike"] is True
    assert counts["timeouts.stubborn"] == 1 and counts["worker_restarts"] == 1


def test_namespaces_restrict_it(source):
    c = make(source, "always", namespaces=["payments", "re:^zz"])
    with CustomRunner([c], "analyzer") as runner:
        found = run_many_with_custom({"stats.payments.ok": series(), "stats.web": series()},
                                     now=NOW, runner=runner, **OPTS)  # fmt: skip
    assert "always" in found["stats.payments.ok"].run
    assert "always" not in found["stats.web"].run
    assert found["stats.web"] == run_ensemble(series(), now=NOW, **OPTS)  # plain path


def test_consensus_1_decides_alone(source):
    calm = series()
    with CustomRunner([make(source, "always", consensus=1)], "analyzer") as runner:
        alone = run_with_custom(calm, now=NOW, runner=runner, metric="m", **OPTS)
    with CustomRunner([make(source, "always")], "analyzer") as runner:
        voter = run_with_custom(calm, now=NOW, runner=runner, metric="m", **OPTS)
    assert alone.anomalous and alone.triggered == ("always",)
    assert not voter.anomalous and voter.triggered == ("always",)


def test_consensus_0_votes_count_towards_consensus(source):
    calm = series()
    base = run_ensemble(calm, now=NOW, early_exit=False, **OPTS)
    need = len(base.triggered) + 1  # one more vote than three-sigma gives
    with CustomRunner([make(source, "always")], "analyzer") as runner:
        v = run_with_custom(calm, now=NOW, runner=runner, metric="m", **{**OPTS, "consensus": need})
    assert v.anomalous


def test_before_and_after_order(source):
    customs = [make(source, "never"), make(source, "always", run_before_3sigma=True)]
    with CustomRunner(customs, "analyzer") as runner:
        v = run_with_custom(series(), now=NOW, runner=runner, metric="m", **OPTS)
    assert v.run[0] == "always" and v.run[-1] == "never" and len(v.run) == 11


def test_run_only_if_consensus(source):
    c = make(source, "always", run_only_if_consensus=True)
    with CustomRunner([c], "analyzer") as runner:
        calm = run_with_custom(series(), now=NOW, runner=runner, metric="m", **OPTS)
        spiky = run_with_custom(series(spike=500.0), now=NOW, runner=runner, metric="m", **OPTS)
    assert "always" not in calm.run and not calm.anomalous
    assert "always" in spiky.triggered and spiky.anomalous


def test_skipped_series_run_no_custom_algorithm(source):
    with CustomRunner([make(source, "always", consensus=1)], "analyzer") as runner:
        v = run_with_custom(series(n=10), now=NOW, runner=runner, metric="m", **OPTS)
        assert runner.take_counts() == {}
    assert v.skip == "TooShort" and v.anomalous is None


def test_use_with_filters_the_application(source):
    c = make(source, "always", use_with=["mirage"])
    runner = CustomRunner([c], "analyzer")
    assert not runner and runner.customs == ()


def test_load_errors_name_the_table_and_file(tmp_path, source):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(CustomAlgorithmError, match=r"#2 \(name 'f'\).*broken.py.*SyntaxError"):
        CustomRunner([make(source, "spike"), make(str(broken), "f")], "analyzer")
    with pytest.raises(CustomAlgorithmError, match=r"#1 \(name 'nope'\).*no function 'nope'"):
        CustomRunner([make(source, "nope")], "analyzer")
    with pytest.raises(CustomAlgorithmError, match=r"#1 .*missing.py not found"):
        CustomRunner([make(str(tmp_path / "missing.py"), "x")], "analyzer")
    with pytest.raises(CustomAlgorithmError, match="three-sigma"):
        CustomRunner([make(source, "grubbs")], "analyzer")


def test_settings_tables(tmp_path, source):
    conf = tmp_path / "skyline.conf"
    conf.write_text(
        f'[[custom_algorithms]]\nname = "spike"\nsource = "{source}"\n'
        'namespaces = ["stats."]\nparameters = {k = 4.0}\nconsensus = 1\n'
    )
    s = load_settings(conf, env={})
    c = s.custom_algorithms[0]
    assert c.parameters == {"k": 4.0} and c.max_execution_time == 0.05
    assert c.use_with == ["analyzer", "crucible"] and c.function_name == "spike"
    conf.write_text(
        f'[[custom_algorithms]]\nname = "x"\nsource = "{source}"\n'
        "run_before_3sigma = true\nrun_only_if_consensus = true\n"
    )
    with pytest.raises(SettingsError, match="custom_algorithms.*run_before_3sigma = false"):
        load_settings(conf, env={})
