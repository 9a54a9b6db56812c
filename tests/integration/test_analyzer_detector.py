"""[analyzer] mode = "default": the streaming detector judging every point, live.

The replay test sends a NAB-style series through a real horizon into the running
analyzer and checks that the anomalies it records are exactly the detections
``skyline nab run`` makes on the same series.  The others exercise the detector
pass on a real Redis: state kept and restored across restarts, batches of late
points each judged, warm-up, duplicates, rebuilds, deletion with the series.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from skyline.analysis.algorithms.spike_level import SpikeLevel
from skyline.analysis.algorithms.state import last_learned
from skyline.analysis.algorithms.stepping import score_points
from skyline.analysis.analyzer.agent import Analyzer
from skyline.analysis.analyzer.detect import DetectorPass, make_detector
from skyline.analysis.nab import cli as nab_cli
from skyline.events.anomaly import read_all
from skyline.settings import AnalyzerSection
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for
from tests.integration.horizon_fixtures import horizon_env, running_horizon, send_tcp

STEP = 60
THRESHOLD = 0.6


def nab_style(rng: np.random.Generator, n: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy daily-ish signal with spikes, a dip and a level shift (like NAB's)."""
    ts = end - STEP * np.arange(n)[::-1]
    vs = 50 + 5 * np.sin(np.arange(n) / 40.0) + rng.normal(0, 1.0, n)
    for at, size in ((500, 25.0), (650, -20.0), (900, 35.0)):
        if at < n:
            vs[at] += size
    vs[1000:] += 15.0
    return ts.astype(np.int64), np.round(vs, 4)


def write_nab_csv(root: Path, ts: np.ndarray, vs: np.ndarray) -> Path:
    path = root / "synthetic" / "replay.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
            w.writerow([time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)), repr(v)])
    return path


def nab_detections(tmp_path: Path, conf: Path, ts, vs) -> set[int]:
    data, out = tmp_path / "nabdata", tmp_path / "nabout"
    write_nab_csv(data, ts, vs)
    assert nab_cli.main(["run", "--data", str(data), "--out", str(out), "--config", str(conf)]) == 0
    name = make_detector().name
    with open(out / name / "synthetic" / f"{name}_replay.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(ts)
    return {int(t) for t, r in zip(ts, rows, strict=True) if float(r["anomaly_score"]) >= THRESHOLD}


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "skyline.conf"
    path.write_text(f'[analyzer]\nmode = "default"\nthreshold = {THRESHOLD}\n')
    return path


def test_replay_through_horizon_equals_nab_run(tmp_path, conf, make_settings, redis_client):
    now = int(time.time())
    ts, vs = nab_style(np.random.default_rng(11), 1150, now - STEP)
    expected = nab_detections(tmp_path, conf, ts, vs)
    assert len(expected) >= 2, "the series should give the detector something to find"
    settings = make_settings(conf, SKYLINE__ANALYZER__INTERVAL="3600",
                             SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.05",
                             **horizon_env(SKYLINE__HORIZON__MAX_AGE="86400"))  # fmt: skip
    analyzer = Analyzer(settings)
    thread = threading.Thread(target=analyzer.run, daemon=True)
    thread.start()
    lines = [f"replay.metric {v!r} {t}\n" for t, v in zip(ts.tolist(), vs.tolist(), strict=True)]
    try:
        with running_horizon(settings) as horizon:
            port = horizon.listeners.ports["line_port"]
            send_tcp(port, "".join(lines[:700]).encode())  # a backfill: judged point by point
            i = 700
            for size in [1, 1, 3, 1, 20, 1, 5, 60, 1] * 60:  # then live, with late flushes
                if i >= len(lines):
                    break
                send_tcp(port, "".join(lines[i : i + size]).encode())
                i += size
                time.sleep(0.01)
            wait_for(lambda: judged(analyzer) == len(ts), timeout=30)
    finally:
        analyzer.stop()
        thread.join(10)
    key = analyzer.keys.detector_state("replay.metric")
    assert last_learned(redis_client.get(key)) == float(ts[-1])  # saved at stop
    got = [e for e in read_all(redis_client, analyzer.keys) if e.metric == "replay.metric"]
    assert sorted(e.timestamp for e in got) == sorted(expected)
    assert all(
        e.triggered[0] == "spike_level" and e.scores["spike_level"] >= THRESHOLD for e in got
    )
    assert analyzer.detect is not None and analyzer.detect.counts.judged == len(ts)


def judged(analyzer: Analyzer) -> int:
    """Points judged so far (0 until the daemon's thread has run ``setup``)."""
    detect = getattr(analyzer, "detect", None)
    return 0 if detect is None else detect.counts.judged


@pytest.fixture
def store_keys(redis_client):
    keys = RedisKeys("sky:")
    return TimeSeriesStore(redis_client, keys), keys


def new_pass(redis_client, store_keys, threshold: float = THRESHOLD, **kw) -> DetectorPass:
    store, keys = store_keys
    return DetectorPass(redis_client, keys, store, make_detector(), threshold, 3600, **kw)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reference(ts, vs, threshold: float = THRESHOLD) -> set[int]:
    det = make_detector()
    scores = score_points(det, det.new_state(1), [ts], [vs])[0]
    return {int(t) for t, s in zip(ts, scores, strict=True) if s >= threshold}


def test_state_survives_restart_and_batches_are_judged_point_by_point(redis_client, store_keys):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(3), 1150, 2_000_000_000)
    found: set[int] = set()
    cuts = [0, 400, 401, 402, 700, 701, 760, 1000, 1003, 1150]
    for k, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        store.append_grouped({"m": (ts[a:b].tolist(), vs[a:b].tolist())})
        if k % 2 == 0:  # a restart: a new pass with no cursors, state from Redis
            dp = new_pass(redis_client, store_keys)
        found |= {d.timestamp for d in dp.run(["m"])}
    assert found == reference(ts, vs) and len(found) >= 2
    assert last_learned(redis_client.get("sky:detector:m")) == float(ts[-1])


def test_every_point_is_judged_once(redis_client, store_keys):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(4), 900, 2_000_000_000)
    dp = new_pass(redis_client, store_keys)
    store.append_grouped({"m": (ts[:800].tolist(), vs[:800].tolist())})
    dp.run(["m"])
    assert dp.counts.judged == 800 and dp.counts.new_states == 1
    dp.run(["m"])  # nothing new
    assert dp.counts.judged == 800
    store.append_grouped({"m": (ts[800:].tolist(), vs[800:].tolist())})
    dupes = ts[790:795].tolist()  # already judged: late, not judged again
    store.append_grouped({"m": (dupes, [1e9] * 5)})
    dp.run(["m"])
    assert dp.counts.judged == 900 and dp.counts.late == 5


def test_warm_up_judges_but_never_flags(redis_client, store_keys):
    store, _ = store_keys
    vs = np.full(60, 10.0)
    vs[30] = 1e6
    ts = 2_000_000_000 + STEP * np.arange(60)
    store.append_grouped({"m": (ts.tolist(), vs.tolist())})
    dp = new_pass(redis_client, store_keys, threshold=0.01)
    assert dp.run(["m"]) == [] and dp.counts.judged == 60


def test_state_of_another_version_is_rebuilt_silently_up_to_its_last_point(
    redis_client, store_keys
):
    store, keys = store_keys
    ts, vs = nab_style(np.random.default_rng(5), 1150, 2_000_000_000)
    store.append_grouped({"m": (ts.tolist(), vs.tolist())})
    other = make_detector()
    old = other.layout.pack_rows(other.new_state(1))[0]
    # header: magic, detector crc, version, width (4 bytes each), last timestamp (f64)
    stale = old[:8] + (12345).to_bytes(4, "little") + old[12:16] + np.float64(ts[949]).tobytes()
    redis_client.set(keys.detector_state("m"), stale + old[24:])
    dp = new_pass(redis_client, store_keys)
    found = {d.timestamp for d in dp.run(["m"])}
    assert dp.counts.rebuilt_states == 1 and dp.counts.judged == 200
    assert found == {t for t in reference(ts, vs) if t > ts[949]}


def test_state_is_deleted_with_the_series(make_settings, redis_client):
    from skyline.ingest.horizon.agent import Horizon

    horizon = Horizon(make_settings())
    keys = horizon.keys
    assert keys.detector_state("x") in horizon.companions_of("x")
    assert keys.rollup(horizon.settings.mirage.rollup_resolution, "x") in horizon.companions_of("x")


def test_a_counter_reset_is_not_an_anomaly(redis_client, store_keys):
    store, _ = store_keys
    rng = np.random.default_rng(9)
    n = 1200
    ts = 2_000_000_000 + STEP * np.arange(n)
    vs = np.cumsum(rng.poisson(100, n)).astype(float)
    vs[900:] -= vs[900] - 5  # the process restarted: the counter starts again
    store.append_grouped({"requests.count": (ts.tolist(), vs.tolist())})
    threshold = AnalyzerSection().threshold
    dp = new_pass(redis_client, store_keys, threshold)
    assert dp.run(["requests.count"]) == []
    raw = SpikeLevel()  # the same detector on the raw values flags the reset
    scores = score_points(raw, raw.new_state(1), [ts], [vs])[0]
    assert scores[900] >= threshold


def test_the_daemon_restarted_mid_stream_judges_as_if_it_never_stopped(
    conf, make_settings, redis_client
):
    ts, vs = nab_style(np.random.default_rng(12), 1150, int(time.time()) - STEP)
    settings = make_settings(conf, SKYLINE__ANALYZER__INTERVAL="3600",
                             SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.05")  # fmt: skip
    key = f"{settings.redis.prefix}detector:m"
    for a, b in [(0, 520), (520, 521), (521, 905), (905, 1150)]:  # a new daemon each time
        analyzer = Analyzer(settings)
        thread = threading.Thread(target=analyzer.run, daemon=True)
        thread.start()
        try:
            analyzer.store.append_grouped({"m": (ts[a:b].tolist(), vs[a:b].tolist())})
            redis_client.sadd(analyzer.keys.changed(), "m")
            wait_for(lambda n=b - a, d=analyzer: judged(d) == n)
        finally:
            analyzer.stop()
            thread.join(10)
        assert last_learned(redis_client.get(key)) == float(ts[b - 1])  # saved at stop
    got = sorted(e.timestamp for e in read_all(redis_client, analyzer.keys) if e.metric == "m")
    assert got == sorted(reference(ts, vs)) and len(got) >= 2


def saved_last(redis_client, metric: str = "m") -> float | None:
    return last_learned(redis_client.get(f"sky:detector:{metric}"))


def test_checkpoints_save_a_cached_state_only_when_due(redis_client, store_keys):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(21), 1150, 2_000_000_000)
    clock = Clock()
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20, checkpoint=100.0, clock=clock)
    store.append_grouped({"m": (ts[:800].tolist(), vs[:800].tolist())})
    found = {d.timestamp for d in dp.run(["m"])}
    assert saved_last(redis_client) == float(ts[799])  # a new state is saved at once
    for i in range(800, 900):  # due after 50-100 s: one point a second stays unsaved
        store.append_grouped({"m": ([int(ts[i])], [float(vs[i])])})
        found |= {d.timestamp for d in dp.run(["m"])}
        clock.now += 0.4
    assert saved_last(redis_client) == float(ts[799])
    clock.now += 100.0
    store.append_grouped({"m": (ts[900:].tolist(), vs[900:].tolist())})
    found |= {d.timestamp for d in dp.run(["m"])}
    assert saved_last(redis_client) == float(ts[-1])  # due: saved
    assert found == reference(ts, vs) and dp.counts.judged == len(ts)


def test_a_crash_between_checkpoints_re_judges_the_same_points(redis_client, store_keys):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(22), 1150, 2_000_000_000)
    expected = reference(ts, vs)
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20, checkpoint=1e9)
    store.append_grouped({"m": (ts[:450].tolist(), vs[:450].tolist())})
    first = {d.timestamp for d in dp.run(["m"])}
    store.append_grouped({"m": (ts[450:1050].tolist(), vs[450:1050].tolist())})
    first |= {d.timestamp for d in dp.run(["m"])}
    assert saved_last(redis_client) == float(ts[449])  # the crash loses this learning
    after = new_pass(redis_client, store_keys)  # the next owner: state from Redis
    store.append_grouped({"m": (ts[1050:].tolist(), vs[1050:].tolist())})
    second = {d.timestamp for d in after.run(["m"])}
    assert after.counts.judged == len(ts) - 450 and after.counts.rebuilt_states == 0
    assert first | second == expected
    assert second == {t for t in expected if t > ts[449]}  # re-judged to the same verdicts


def test_stop_and_handover_flush_the_unsaved_states(redis_client, store_keys):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(23), 600, 2_000_000_000)
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20, checkpoint=1e9)
    for m in ("a", "b"):
        store.append_grouped({m: (ts[:500].tolist(), vs[:500].tolist())})
    dp.run(["a", "b"])
    for m in ("a", "b"):
        store.append_grouped({m: (ts[500:].tolist(), vs[500:].tolist())})
    dp.run(["a", "b"])
    assert saved_last(redis_client, "a") == saved_last(redis_client, "b") == float(ts[499])
    assert dp.flush(["a"]) == 1 and saved_last(redis_client, "a") == float(ts[-1])
    assert saved_last(redis_client, "b") == float(ts[499])
    assert dp.flush() == 1 and saved_last(redis_client, "b") == float(ts[-1])
    assert dp.flush() == 0  # nothing left unsaved
    state = make_detector().layout.unpack_rows([redis_client.get("sky:detector:a")],
                                               make_detector().new_state(1))[0]  # fmt: skip
    assert np.array_equal(state[0], dp.cache.get("a")[1], equal_nan=True)


def test_states_the_cache_evicts_unsaved_are_saved(redis_client, store_keys):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(24), 600, 2_000_000_000)
    one = make_detector().layout.nbytes
    dp = new_pass(redis_client, store_keys, cache_bytes=2 * one + 200, checkpoint=1e9)
    names = ["a", "b", "c"]
    for m in names[:2]:
        store.append_grouped({m: (ts[:500].tolist(), vs[:500].tolist())})
    dp.run(names[:2])
    for m in names[:2]:
        store.append_grouped({m: (ts[500:].tolist(), vs[500:].tolist())})
    dp.run(names[:2])  # a and b run ahead of Redis, in the cache
    assert {m for m, _ in dp.cache.dirty()} == {"a", "b"}
    store.append_grouped({"c": (ts.tolist(), vs.tolist())})
    dp.run(["c"])  # caching c evicts a, which is saved rather than lost
    assert saved_last(redis_client, "a") == float(ts[-1]) and dp.cache.get("a") is None
    assert saved_last(redis_client, "b") == float(ts[499])


def test_a_failed_pass_forgets_its_metrics_so_no_point_is_skipped(
    redis_client, store_keys, monkeypatch
):
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(25), 1150, 2_000_000_000)
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20, checkpoint=1e9)
    store.append_grouped({"m": (ts[:600].tolist(), vs[:600].tolist())})
    found = {d.timestamp for d in dp.run(["m"])}
    store.append_grouped({"m": (ts[600:950].tolist(), vs[600:950].tolist())})
    real_step = dp.detector.step

    def fail(*args, **kw):
        real_step(*args, **kw)  # learns in place, then the pass fails
        raise ConnectionError("forced")

    monkeypatch.setattr(dp.detector, "step", fail)
    with pytest.raises(ConnectionError):
        dp.run(["m"])
    monkeypatch.setattr(dp.detector, "step", real_step)
    store.append_grouped({"m": (ts[950:].tolist(), vs[950:].tolist())})
    found |= {d.timestamp for d in dp.run(["m"])}
    expected = reference(ts, vs)
    assert any(ts[600] <= t < ts[950] for t in expected)  # the failed pass had work to redo
    assert found == expected and dp.counts.judged == len(ts)


def test_a_metric_named_twice_in_one_run_is_judged_once(redis_client, store_keys):
    """Arrivals can name a metric twice (popped from the changed set and routed to
    this member by another): each point is judged, and detected, once."""
    store, _ = store_keys
    ts, vs = nab_style(np.random.default_rng(26), 1150, 2_000_000_000)
    expected = reference(ts, vs)
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20, checkpoint=1e9)
    store.append_grouped({"m": (ts[:450].tolist(), vs[:450].tolist())})
    found = dp.run(["m", "m"])
    store.append_grouped({"m": (ts[450:].tolist(), vs[450:].tolist())})
    found += dp.run(["m", "other", "m"])
    stamps = [d.timestamp for d in found]
    assert len(stamps) == len(set(stamps)), "duplicate detections"
    assert set(stamps) == expected and dp.counts.judged == len(ts)


def test_chunks_read_ahead_survive_evictions_and_failures(redis_client, store_keys, monkeypatch):
    """A pass sends the next chunk's reads before it judges this one.  Judging a
    chunk can evict a state of the next chunk from the cache after its header
    check was sent: that state is read whole instead, and no point is skipped or
    judged twice.  A failing chunk cancels the reads sent for the next one."""
    from skyline.analysis.analyzer import detect

    monkeypatch.setattr(detect, "STATE_CHUNK", 2)
    store, _ = store_keys
    names = ["a", "b", "c", "d", "e"]
    series = {m: nab_style(np.random.default_rng(30 + k), 1150, 2_000_000_000)
              for k, m in enumerate(names)}  # fmt: skip
    one = make_detector().layout.nbytes
    dp = new_pass(redis_client, store_keys, cache_bytes=3 * one + 500, checkpoint=1e9)
    real_step, calls = dp.detector.step, []

    def fail_second_call(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("forced")
        return real_step(*args, **kw)

    found: dict[str, set[int]] = {m: set() for m in names}
    # a and b lag one pass behind c, d and e: in the second pass, judging a and b
    # saves states whose header equals the one c has in Redis, evicts c (asked with
    # a header check) and gives b c's slot; c must not take b's row.
    cuts = {"a": [0, 400, 500, 700, 900, 1150], "c": [0, 500, 600, 700, 900, 1150]}
    for k in range(5):
        for m in names:
            ts, vs = series[m]
            lo, hi = cuts["a" if m in "ab" else "c"][k : k + 2]
            store.append_grouped({m: (ts[lo:hi].tolist(), vs[lo:hi].tolist())})
        if k == 3:  # fails in the second chunk, with the third's reads sent
            monkeypatch.setattr(dp.detector, "step", fail_second_call)
            with pytest.raises((ConnectionError, detect.PassFailed)) as failed:
                dp.run(names)
            for d in getattr(failed.value, "found", []):  # the first chunk's
                found[d.metric].add(d.timestamp)
            assert not redis_client.connection_pool._in_use_connections  # cancelled, released
            monkeypatch.setattr(dp.detector, "step", real_step)
        for d in dp.run(names):
            found[d.metric].add(d.timestamp)
    for m in names:
        assert found[m] == reference(*series[m]), m
        assert saved_last(redis_client, m) is not None
    assert len(dp.cache) <= 3


def test_a_state_deleted_under_a_cached_one_is_rebuilt_from_the_whole_series(
    redis_client, store_keys
):
    """The state is cached and the series read past a cursor; the state key is
    deleted: the metric is new again, so its whole series is judged."""
    store, keys = store_keys
    ts, vs = nab_style(np.random.default_rng(27), 1150, 2_000_000_000)
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20, checkpoint=1e9)
    store.append_grouped({"m": (ts[:900].tolist(), vs[:900].tolist())})
    dp.run(["m"])
    dp.flush()
    redis_client.delete(keys.detector_state("m"))
    store.append_grouped({"m": (ts[900:].tolist(), vs[900:].tolist())})
    found = {d.timestamp for d in dp.run(["m"])}
    assert dp.counts.new_states == 2 and dp.counts.judged == 900 + len(ts)
    assert found == reference(ts, vs) and saved_last(redis_client) == float(ts[-1])


def test_a_failed_save_of_an_evicted_state_forgets_it_so_no_point_is_skipped(
    redis_client, store_keys, monkeypatch
):
    """Caching c evicts a's unsaved state, and writing it fails (forced): c's pass
    still returns its detections (its own state is saved), and a is forgotten, so
    its next pass restores the state last saved and re-judges the points after it
    rather than reading on from the cursor."""
    from skyline.analysis.analyzer import detect

    store, _ = store_keys
    series = {m: nab_style(np.random.default_rng(40 + k), 1150, 2_000_000_000)
              for k, m in enumerate("abc")}  # fmt: skip
    one = make_detector().layout.nbytes
    dp = new_pass(redis_client, store_keys, cache_bytes=2 * one + 200, checkpoint=1e9)
    found: dict[str, set[int]] = {m: set() for m in "abc"}

    def feed(names: str, lo: int, hi: int) -> None:
        for m in names:
            ts, vs = series[m]
            store.append_grouped({m: (ts[lo:hi].tolist(), vs[lo:hi].tolist())})

    def run(names: str) -> None:
        for d in dp.run(list(names)):
            found[d.metric].add(d.timestamp)

    feed("ab", 0, 500)
    run("ab")
    feed("ab", 500, 800)
    run("ab")  # a and b run ahead of Redis, in the cache
    assert {m for m, _ in dp.cache.dirty()} == {"a", "b"}
    feed("c", 0, 1150)
    real = detect.redis_raw.execute_checked

    def refuse_the_evicted(client, payload, replies):
        if detect.redis_raw.execute_checked is refuse_the_evicted and calls:
            raise redis.ResponseError("OOM forced")
        calls.append(1)
        return real(client, payload, replies)

    calls: list[int] = []
    monkeypatch.setattr(detect.redis_raw, "execute_checked", refuse_the_evicted)
    run("c")  # c is saved; a, evicted, is not
    monkeypatch.setattr(detect.redis_raw, "execute_checked", real)
    assert dp.counts.evicted_unsaved == 1 and len(calls) == 1
    assert saved_last(redis_client, "a") == float(series["a"][0][499])
    feed("ab", 800, 1150)
    run("abc")
    dp.flush()
    det = make_detector()
    for m in "abc":
        assert found[m] == reference(*series[m]), m
        want = det.new_state(1)  # every point learned once, in order
        score_points(det, want, [series[m][0]], [series[m][1]])
        got = det.layout.unpack_rows([redis_client.get(f"sky:detector:{m}")], det.new_state(1))
        assert np.array_equal(got[0], want, equal_nan=True), m


def test_a_chunk_failing_keeps_the_detections_of_the_chunks_before_it(
    redis_client, store_keys, monkeypatch
):
    """The first chunk's cursor moved on and its state was saved: its detections
    would never be found again, so the failure carries them (``PassFailed``)."""
    from skyline.analysis.analyzer import detect

    monkeypatch.setattr(detect, "STATE_CHUNK", 1)
    store, _ = store_keys
    series = {m: nab_style(np.random.default_rng(50 + k), 1150, 2_000_000_000)
              for k, m in enumerate("ab")}  # fmt: skip
    for m, (ts, vs) in series.items():
        store.append_grouped({m: (ts[:950].tolist(), vs[:950].tolist())})
    dp = new_pass(redis_client, store_keys)
    real_step, calls = dp.detector.step, []

    def fail_in_the_second_chunk(*args, **kw):
        calls.append(1)
        if len(calls) > 950:  # one call per point of the first chunk's metric
            raise ConnectionError("forced")
        return real_step(*args, **kw)

    monkeypatch.setattr(dp.detector, "step", fail_in_the_second_chunk)
    with pytest.raises(detect.PassFailed) as failed:
        dp.run(["a", "b"])
    assert isinstance(failed.value.__cause__, ConnectionError)
    first = {d.timestamp for d in failed.value.found}
    assert {d.metric for d in failed.value.found} == {"a"}
    assert first == {t for t in reference(*series["a"]) if t <= series["a"][0][949]} != set()
    monkeypatch.setattr(dp.detector, "step", real_step)
    for m, (ts, vs) in series.items():
        store.append_grouped({m: (ts[950:].tolist(), vs[950:].tolist())})
    found = dp.run(["a", "b"])
    assert first | {d.timestamp for d in found if d.metric == "a"} == reference(*series["a"])
    assert {d.timestamp for d in found if d.metric == "b"} == reference(*series["b"])


def test_the_analyzer_emits_what_a_failed_pass_found_then_raises(conf, make_settings,
                                                                 redis_client, monkeypatch):  # fmt: skip
    from skyline.analysis.analyzer.detect import Detection, PassFailed

    analyzer = Analyzer(make_settings(conf))
    analyzer.setup()
    assert analyzer.detect is not None
    now = int(time.time())
    analyzer.store.append_grouped({"m": ([now - 60, now], [1.0, 50.0])})

    def failing_run(metrics):
        try:
            raise ConnectionError("forced")
        except ConnectionError as exc:
            raise PassFailed([Detection("m", now, 50.0, 0.99)]) from exc

    monkeypatch.setattr(analyzer.detect, "run", failing_run)
    with pytest.raises(ConnectionError, match="forced"):
        analyzer.analyse_metrics(["m"], "arrival")
    got = [e for e in read_all(redis_client, analyzer.keys) if e.metric == "m"]
    assert [(e.timestamp, e.value) for e in got] == [(now, 50.0)]


def test_keys_of_another_type_read_as_missing_and_spoil_no_other_metric(redis_client,
                                                                        store_keys):  # fmt: skip
    """A series or state key that something else wrote as another type: the metric
    has no series (or no state), and every other metric of the pass is judged as
    usual -- a WRONGTYPE reply is not an error for the whole chunk (read whole, read
    past a cursor, and a cached state's header checked)."""
    store, keys = store_keys
    ts, vs = nab_style(np.random.default_rng(6), 1100, 2_000_000_000)
    names = ["m0", "m1", "m2"]
    store.append_grouped({m: (ts[:1000].tolist(), vs[:1000].tolist()) for m in names})
    redis_client.delete(keys.series("m1"))
    redis_client.hset(keys.series("m1"), "f", "v")  # no cursor yet: read whole
    redis_client.rpush(keys.detector_state("m2"), "x")  # no state: a new one
    dp = new_pass(redis_client, store_keys, cache_bytes=1 << 20)
    found = {(d.metric, d.timestamp) for d in dp.run(names)}
    assert dp.counts.judged == 2000
    assert dp.cache.slots(["m0"])[0] >= 0  # m0's state cached: only its header is read next
    redis_client.delete(keys.series("m0"))  # past its cursor now: GETRANGE meets a set
    redis_client.sadd(keys.series("m0"), "x")
    redis_client.delete(keys.detector_state("m0"))  # its cached state's header meets a set
    redis_client.sadd(keys.detector_state("m0"), "x")
    assert redis_client.type(keys.detector_state("m2")) == b"string"  # saved over the list
    store.append_grouped({"m2": (ts[1000:].tolist(), vs[1000:].tolist())})
    found |= {(d.metric, d.timestamp) for d in dp.run(names)}
    assert dp.counts.judged == 2100
    want = reference(ts, vs)
    assert {t for m, t in found if m == "m2"} == want
    assert {t for m, t in found if m == "m0"} == {t for t in want if t <= ts[999]}
    assert not {t for m, t in found if m == "m1"}
