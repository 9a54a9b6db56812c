"""Rollups against a slow, obviously-correct twin: pure-Python bucket means of every
point that ever arrived, over several passes with data (and roomba's trim) in
between, across retention trimming, and the history mirage reads."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.store.keys import RedisKeys
from skyline.store.rollups import Rollups, encode, fold
from skyline.store.sealed import is_sealed
from skyline.store.timeseries import Series, TimeSeriesStore

RES = 600
LAG = 60
DAY = 86400
T0 = 1_700_000_000 - 1_700_000_000 % DAY  # a midnight


def twin(points: dict[int, float], res: int) -> dict[int, float]:
    """Bucket start -> mean of the points in [start, start + res), by hand."""
    sums: dict[int, list[float]] = {}
    for t in sorted(points):
        sums.setdefault(t - t % res, []).append(points[t])
    return {b: sum(vs) / len(vs) for b, vs in sums.items()}


def as_dict(series: Series) -> dict[int, float]:
    return dict(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))


def assert_same(got: dict[int, float], want: dict[int, float]) -> None:
    assert list(got) == sorted(want), "bucket starts differ"
    for b, v in want.items():
        assert got[b] == pytest.approx(v, rel=1e-12, abs=1e-9), b


@pytest.fixture
def store(redis_client) -> TimeSeriesStore:
    return TimeSeriesStore(redis_client, RedisKeys("sky:"))


def feed(store: TimeSeriesStore, metric: str, ts: np.ndarray, vs: np.ndarray) -> None:
    store.append_grouped({metric: (ts.tolist(), vs.tolist())})


def gappy(seed: int, n: int, start: int, step: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Minutely points with random holes (some longer than a bucket), jittered."""
    rng = np.random.default_rng(seed)
    ts = start + step * np.arange(n) + rng.integers(0, step, n)
    keep = rng.random(n) > 0.3
    keep[(np.arange(n) // 50) % 7 == 3] = False  # holes of 50 minutes
    return ts[keep], rng.normal(100, 20, n)[keep] * (1 + rng.random(n)[keep])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_passes_with_data_in_between_equal_the_twin(store, seed):
    """Data arrives in batches; after each the pass runs, then roomba trims the raw
    series to 6 h (as horizon's roomba does: fold first, then trim), so the raw
    window alone no longer holds the oldest buckets."""
    rollups = Rollups(store, RES)
    ts, vs = gappy(seed, 3 * 1440, T0 + 17)
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(ts)), 25, replace=False))
    written = 0
    for part in np.split(np.arange(len(ts)), cuts):
        feed(store, "m", ts[part], vs[part])
        now = int(ts[part[-1]])
        written += rollups.roll_up(["m"], now=now, retention=30 * DAY, lag=LAG)["buckets_written"]
        store.trim_many(["m"], now=now, keep_seconds=6 * 3600, grace=0, inactive_after=DAY)
    want = twin(dict(zip(ts.tolist(), vs.tolist(), strict=True)), RES)
    first = int(ts[0]) // RES * RES + RES  # the first point is not at a bucket start
    complete = (int(ts[-1]) - LAG) // RES * RES  # buckets before this are complete
    want = {b: v for b, v in want.items() if first <= b < complete}
    got = as_dict(rollups.read("m"))
    assert_same(got, want)
    assert written == len(want) > 300
    # a pass over unchanged data writes nothing (idempotent)
    again = rollups.roll_up(["m"], now=int(ts[-1]), retention=30 * DAY, lag=LAG)
    assert again["buckets_written"] == 0 and len(rollups.read("m")) == len(want)


def test_hand_picked_bucket_edges_and_lag(store):
    rollups = Rollups(store, RES)
    # first point exactly at a bucket start: that bucket is whole and folded
    points = {T0: 1.0, T0 + 599: 3.0, T0 + 600: 10.0, T0 + 1199: 20.0, T0 + 1800: 7.0}
    feed(store, "m", np.array(list(points)), np.array(list(points.values())))
    rollups.roll_up(["m"], now=T0 + 1800, retention=30 * DAY, lag=LAG)
    # newest point T0+1800: bucket T0+1200 needs data at or after T0+1860 -> not yet
    assert as_dict(rollups.read("m")) == {T0: 2.0, T0 + 600: 15.0}
    feed(store, "m", np.array([T0 + 1859]), np.array([9.0]))
    rollups.roll_up(["m"], now=T0 + 1859, retention=30 * DAY, lag=LAG)
    assert len(rollups.read("m")) == 2  # one second short of the lag
    feed(store, "m", np.array([T0 + 1860]), np.array([5.0]))
    rollups.roll_up(["m"], now=T0 + 1860, retention=30 * DAY, lag=LAG)
    # bucket T0+1200 held no point: no record; bucket T0+1800 is not complete yet
    assert as_dict(rollups.read("m")) == {T0: 2.0, T0 + 600: 15.0}
    feed(store, "m", np.array([T0 + 2460]), np.array([1.0]))
    rollups.roll_up(["m"], now=T0 + 2460, retention=30 * DAY, lag=LAG)
    assert as_dict(rollups.read("m")) == {T0: 2.0, T0 + 600: 15.0, T0 + 1800: 7.0}


def test_late_data_for_a_folded_bucket_is_not_folded_again(store):
    rollups = Rollups(store, RES)
    feed(store, "m", T0 + 60 * np.arange(40), np.full(40, 4.0))
    rollups.roll_up(["m"], now=T0 + 2400, retention=30 * DAY, lag=LAG)
    before = as_dict(rollups.read("m"))
    assert before == {T0: 4.0, T0 + 600: 4.0, T0 + 1200: 4.0}
    feed(store, "m", np.array([T0 + 30, T0 + 2460]), np.array([1000.0, 4.0]))  # one late
    rollups.roll_up(["m"], now=T0 + 3100, retention=30 * DAY, lag=LAG)
    assert as_dict(rollups.read("m")) == {**before, T0 + 1800: 4.0}


def test_retention_trim_keeps_exactly_the_retention(store):
    rollups = Rollups(store, RES)
    ts, vs = gappy(9, 40 * 144, T0, step=RES)  # 40 days, one point per bucket
    feed(store, "m", ts, vs)
    now = int(ts[-1])
    out = rollups.roll_up(["m"], now=now, retention=30 * DAY, lag=LAG, trim_grace=0)
    assert out["trimmed"] == 0  # the head is checked as the pass found it: empty
    out = rollups.roll_up(["m"], now=now, retention=30 * DAY, lag=LAG, trim_grace=0)
    assert out["trimmed"] == 1 and out["buckets_written"] == 0
    want = twin(dict(zip(ts.tolist(), vs.tolist(), strict=True)), RES)
    cutoff = now - 30 * DAY
    complete = (now - LAG) // RES * RES
    want = {b: v for b, v in want.items() if cutoff <= b < complete and b >= ts[0]}
    assert_same(as_dict(rollups.read("m")), want)
    # within the grace, no rewrite; past it, trimmed again to the retention
    assert rollups.roll_up(["m"], now=now + 3600, retention=30 * DAY, lag=LAG)["trimmed"] == 0
    later = now + 5 * DAY
    rollups.roll_up(["m"], now=later, retention=30 * DAY, lag=LAG, trim_grace=0)
    assert as_dict(rollups.read("m")) == {b: v for b, v in want.items() if b >= later - 30 * DAY}


def test_history_is_rollups_then_raw_downsampled(store):
    """Seven days through the store with passes, raw trimmed to 24 h: history over the
    week equals the twin's buckets, the last one partial (the points so far)."""
    rollups = Rollups(store, RES)
    ts, vs = gappy(5, 7 * 1440 + 7, T0 + 3)
    for part in np.array_split(np.arange(len(ts)), 40):
        feed(store, "m", ts[part], vs[part])
        now = int(ts[part[-1]])
        rollups.roll_up(["m"], now=now, retention=30 * DAY, lag=LAG)
        store.trim_many(["m"], now=now, keep_seconds=DAY, grace=0, inactive_after=DAY)
    end = int(ts[-1])
    assert int(store.read("m").timestamps[0]) > end - DAY - 120  # raw really is one day
    start = end - 168 * 3600
    got = as_dict(rollups.history("m", start, end))
    want = twin(dict(zip(ts.tolist(), vs.tolist(), strict=True)), RES)
    first = int(ts[0]) // RES * RES + RES
    want = {b: v for b, v in want.items() if b >= max(start, first)}
    assert_same(got, want)
    assert end - end % RES in got  # the anomaly's own (partial) bucket is there


def test_history_without_rollups_is_the_raw_series(store):
    ts = T0 + 60 * np.arange(100)
    feed(store, "m", ts, np.arange(100.0))
    got = Rollups(store, RES).history("m", T0, int(ts[-1]))
    assert as_dict(got) == {T0 + RES * i: 4.5 + 10 * i for i in range(10)}


def test_fold_of_an_empty_or_young_series():
    assert len(fold(Series.empty(), None, RES, LAG)) == 0
    young = Series(np.array([T0, T0 + 60]), np.array([1.0, 2.0]))
    assert len(fold(young, None, RES, LAG)) == 0


def test_roomba_deletes_the_rollup_with_an_inactive_metric(store):
    rollups = Rollups(store, RES)
    for metric, start in (("gone", T0), ("alive", T0 + DAY)):
        feed(store, metric, start + 60 * np.arange(60), np.ones(60))
    rollups.roll_up(["gone", "alive"], now=T0 + DAY + 3600, retention=30 * DAY, lag=LAG)
    assert len(rollups.read("gone")) and len(rollups.read("alive"))
    outcome = store.trim_many(["gone", "alive"], now=T0 + DAY + 3600, keep_seconds=DAY,
                              grace=0, inactive_after=DAY,
                              companions=lambda m: [rollups.key(m)])  # fmt: skip
    assert outcome["deleted"] == 1
    assert not store.redis.exists(rollups.key("gone"), store.keys.series("gone"))
    assert len(rollups.read("alive")) == 5  # the newest bucket is not complete


def test_a_concurrent_pass_never_duplicates(store):
    """Two passes that read the same tail: only the first append lands."""
    rollups = Rollups(store, RES)
    feed(store, "m", T0 + 60 * np.arange(30), np.ones(30))
    tail = store.redis.getrange(rollups.key("m"), -12, -1)
    rollups.roll_up(["m"], now=T0 + 1800, retention=30 * DAY, lag=LAG)
    assert rollups._append(keys=[rollups.key("m")], args=[tail, b"x" * 12]) == -1
    assert len(rollups.read("m")) == 2


def test_a_rollup_key_of_another_type_skips_that_metric_only(store):
    """A rollup key that something else wrote as a hash: that metric is counted as
    ``wrong_type`` and left alone; the other metrics of its chunk are rolled up, and
    reading its history reads the raw series only."""
    rollups = Rollups(store, RES)
    for m in ("a", "b", "c"):
        feed(store, m, T0 + 60 * np.arange(30), np.arange(30.0))
    store.redis.hset(rollups.key("b"), "f", "v")
    out = rollups.roll_up(["a", "b", "c"], now=T0 + 1800, retention=30 * DAY, lag=LAG)
    assert out["wrong_type"] == 1 and out["metrics_updated"] == 2 and out["metrics_read"] == 2
    assert out["buckets_written"] == 2 * 2  # two complete buckets each, for a and c only
    folded = twin({int(T0 + 60 * i): float(i) for i in range(20)}, RES)  # two whole buckets
    assert as_dict(rollups.read("a")) == as_dict(rollups.read("c")) == folded
    assert len(rollups.read("b")) == 0 and store.redis.type(rollups.key("b")) == b"hash"
    assert len(rollups.history("b", T0, T0 + 1800)) == 3  # the raw series, in buckets


def test_every_write_sets_a_ttl_so_an_orphan_expires(store):
    """A rollup nobody appends to any more (metric deleted without it, resolution
    changed, out of scope) must not live forever: append and trim set its TTL."""
    rollups = Rollups(store, RES)
    feed(store, "m", T0 + 60 * np.arange(60), np.ones(60))
    rollups.roll_up(["m"], now=T0 + 3600, retention=DAY, lag=LAG, trim_grace=3600)
    ttl = store.redis.pttl(rollups.key("m"))
    assert DAY * 1000 < ttl <= (DAY + 3600) * 1000
    # the head cut (a SET) keeps a TTL too
    store.redis.persist(rollups.key("m"))
    feed(store, "m", T0 + 3 * DAY + 60 * np.arange(60), np.ones(60))
    out = rollups.roll_up(["m"], now=T0 + 3 * DAY + 3600, retention=DAY, lag=LAG, trim_grace=3600)
    assert out["trimmed"] == 1 and store.redis.pttl(rollups.key("m")) > DAY * 1000


def test_store_delete_deletes_the_companion_rollup(redis_client):
    keys = RedisKeys("sky:")
    rollups_key = lambda m: [keys.rollup(RES, m)]  # noqa: E731
    store = TimeSeriesStore(redis_client, keys, companions=rollups_key)
    rollups = Rollups(store, RES)
    for metric in ("gone", "kept"):
        feed(store, metric, T0 + 60 * np.arange(60), np.ones(60))
    rollups.roll_up(["gone", "kept"], now=T0 + 3600, retention=DAY, lag=LAG)
    store.delete("gone")
    assert not redis_client.exists(keys.series("gone"), rollups.key("gone"))
    assert redis_client.exists(rollups.key("kept")) and store.metrics() == ["kept"]


SCOPE_CONF = """
[[alerts]]
pattern = "shop"
channel = "smtp"
mirage_hours = 168
[[alerts]]
pattern = "web"
channel = "smtp"
"""


@pytest.mark.parametrize(
    ("env", "want"),
    [
        ({}, ["shop.a", "shop.b"]),  # auto: the metrics a mirage rule matches
        ({"SKYLINE__MIRAGE__GRAPHITE_URL": "http://g:8080"}, []),  # auto, remote history
        ({"SKYLINE__MIRAGE__PROMETHEUS_URL": "http://p:9090"}, []),
        (
            {"SKYLINE__MIRAGE__ROLLUPS": "on", "SKYLINE__MIRAGE__GRAPHITE_URL": "http://g:8080"},
            ["other", "shop.a", "shop.b", "web.x"],
        ),  # fmt: skip
        ({"SKYLINE__MIRAGE__ROLLUPS": "off"}, []),
    ],
)
def test_rollup_scope(tmp_path, env, want):
    from skyline.ingest.horizon.rollup_scope import RollupScope
    from skyline.settings import load_settings

    conf = tmp_path / "skyline.conf"
    conf.write_text(SCOPE_CONF)
    scope = RollupScope(load_settings(conf, env=env))
    names = ["other", "shop.a", "shop.b", "web.x"]
    assert scope.select(names) == want
    assert scope.select(names) == want  # from the cache
    assert scope.enabled == bool(want)


def test_auto_scope_without_any_mirage_rule_is_empty(tmp_path):
    from skyline.ingest.horizon.rollup_scope import RollupScope
    from skyline.settings import load_settings

    conf = tmp_path / "skyline.conf"
    conf.write_text('[[alerts]]\npattern = "web"\nchannel = "smtp"\n')
    assert RollupScope(load_settings(conf, env={})).select(["web.x", "shop.a"]) == []


def test_rollups_are_sealed_and_old_record_rollups_read_then_sealed(store):
    """A rollup written as records (by an earlier pass, or before sealed blocks
    existed) is read as it is and sealed by the next pass, with the same buckets;
    appends after the block are read with it."""
    rollups = Rollups(store, RES)
    ts, vs = gappy(11, 3 * 144, T0, step=RES)
    feed(store, "m", ts, vs)
    key = rollups.key("m")
    old = encode(np.array([T0 - 2 * RES, T0 - RES]), np.array([1.5, -2.25]))
    store.redis.set(key, old)
    assert as_dict(rollups.read("m")) == {T0 - 2 * RES: 1.5, T0 - RES: -2.25}
    now = int(ts[-1])
    out = rollups.roll_up(["m"], now=now, retention=30 * DAY, lag=LAG)
    assert out["sealed"] == 1 and is_sealed(store.redis.get(key))
    want = {T0 - 2 * RES: 1.5, T0 - RES: -2.25} | twin(
        dict(zip(ts.tolist(), vs.tolist(), strict=True)), RES
    )
    complete = (now - LAG) // RES * RES
    want = {b: v for b, v in want.items() if b < complete and (b < T0 or b >= ts[0])}
    assert_same(as_dict(rollups.read("m")), want)
    assert len(store.redis.get(key)) < 12 * len(want)  # means of noise: little to gain
    feed(store, "m", np.array([now + RES, now + 3 * RES]), np.array([7.0, 8.0]))
    out = rollups.roll_up(["m"], now=now + 3 * RES, retention=30 * DAY, lag=LAG)
    assert out["buckets_written"] >= 1 and "sealed" not in out  # appended after the block
    assert as_dict(rollups.read("m"))[(now + RES) // RES * RES] == 7.0
