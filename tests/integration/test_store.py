"""The time-series store on a real Redis, and on a real Redis Cluster."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from redis.cluster import RedisCluster

from skyline.store.datapoint import Reject, Window
from skyline.store.keys import RedisKeys
from skyline.store.rollups import Rollups
from skyline.store.sealed import is_sealed, read_header, seal
from skyline.store.timeseries import (
    MGET_CHUNK,
    RECORD,
    Cursor,
    TimeSeriesStore,
    decode,
    encode,
    header,
    to_series,
)

NOW = 1_800_000_000.0
DAY = 86400


@pytest.fixture
def redis_client(redis_or_cluster):
    """Every test here runs on a single Redis and on the 3+3 Redis Cluster."""
    return redis_or_cluster


@pytest.fixture
def store(redis_client):
    return TimeSeriesStore(redis_client, RedisKeys("t:"))


def test_append_many_metrics_and_read_back(store):
    points = [(f"m.{i}", NOW - 60 * k, float(i * 100 + k)) for i in range(50) for k in range(3)]
    result = store.append(points, now=NOW)
    assert result.written == 150 and result.rejected == []
    assert store.metrics() == sorted(f"m.{i}" for i in range(50))
    s = store.read("m.7")
    assert s.timestamps.tolist() == [NOW - 120, NOW - 60, NOW]
    assert s.values.tolist() == [702.0, 701.0, 700.0]
    many = store.read_many(["m.1", "m.2", "absent"])
    assert many["m.2"].values.tolist() == [202.0, 201.0, 200.0]
    assert len(many["absent"]) == 0


HOSTILE = [
    ("nan", NOW, float("nan"), Reject.VALUE_NOT_FINITE),
    ("inf", NOW, float("inf"), Reject.VALUE_NOT_FINITE),
    ("ninf", NOW, -float("inf"), Reject.VALUE_NOT_FINITE),
    ("text", NOW, "twelve", Reject.VALUE_NOT_NUMERIC),
    ("none", NOW, None, Reject.VALUE_NOT_NUMERIC),
    ("bool", NOW, True, Reject.VALUE_NOT_NUMERIC),
    ("future", NOW + 10 * DAY, 1.0, Reject.TIMESTAMP_IN_FUTURE),
    ("far.future", 1e30, 1.0, Reject.TIMESTAMP_IN_FUTURE),
    ("old", NOW - 10 * DAY, 1.0, Reject.TIMESTAMP_TOO_OLD),
    ("nan.ts", float("nan"), 1.0, Reject.TIMESTAMP_NOT_NUMERIC),
    ("str.ts", "yesterday", 1.0, Reject.TIMESTAMP_NOT_NUMERIC),
    ("bad name", NOW, 1.0, Reject.NAME_CHARSET),
    ("", NOW, 1.0, Reject.NAME_EMPTY),
    ("x" * 2000, NOW, 1.0, Reject.NAME_TOO_LONG),
    ("caf\u00e9", NOW, 1.0, Reject.NAME_CHARSET),
]


def test_hostile_points_are_refused_and_good_ones_kept(store):
    store.append([("good", NOW - 60, 1.0)], now=NOW)
    batch = [("good", NOW, 2.0)] + [(n, t, v) for n, t, v, _ in HOSTILE] + [("good2", NOW, "3.5")]
    result = store.append(batch, now=NOW, window=Window(max_age=DAY, max_future=60))
    assert result.written == 2
    assert [reason for _, reason in result.rejected] == [r for *_, r in HOSTILE]
    assert store.metrics() == ["good", "good2"]
    assert store.read("good").values.tolist() == [1.0, 2.0]
    assert store.read("good2").values.tolist() == [3.5]


def test_read_since_returns_only_new_records(store):
    store.append([("a", NOW - 120, 1.0), ("a", NOW - 60, 2.0)])
    rec, cursor, whole = store.read_since("a", None)
    assert whole and rec["v"].tolist() == [1.0, 2.0]
    rec, cursor, whole = store.read_since("a", cursor)
    assert not whole and len(rec) == 0
    store.append([("a", NOW, 3.0)])
    rec, cursor, whole = store.read_since("a", cursor)
    assert not whole and rec["v"].tolist() == [3.0]


def test_read_since_detects_a_rewrite(store):
    store.append([("a", NOW - DAY - 2000, 0.0), ("a", NOW - 60, 1.0)])
    _, cursor, _ = store.read_since("a", None)
    store.append([("a", NOW, 2.0)])
    assert store.trim_many(["a"], NOW, DAY, 600, DAY)["rewritten"] == 1
    rec, cursor, whole = store.read_since("a", cursor)
    assert whole, "a rewrite must make the reader re-read the whole series"
    assert rec["v"].tolist() == [1.0, 2.0]


def test_read_since_detects_a_replaced_key(store):
    store.append([("a", NOW - 60, 1.0), ("a", NOW - 30, 1.5)])
    _, cursor, _ = store.read_since("a", None)
    store.delete("a")
    store.append([("a", NOW, 9.0), ("a", NOW + 1, 9.5), ("a", NOW + 2, 9.75)])
    rec, _, whole = store.read_since("a", cursor)
    assert whole and rec["v"].tolist() == [9.0, 9.5, 9.75]


def test_read_since_stops_before_a_partial_record(store):
    """A record half-written when the reader looks (bytes of it missing) is left for
    the next read, which gets it whole; the records before it are not held back."""
    store.append([("a", NOW - 120, 1.0), ("a", NOW - 60, 2.0)])
    _, cursor, _ = store.read_since("a", None)
    rec = np.array([(NOW, 3.0), (NOW + 60, 4.0)], dtype=RECORD).tobytes()
    key = store.keys.series("a")
    store.redis.append(key, rec[:17])  # one record and 5 bytes of the next
    got, cursor, whole = store.read_since("a", cursor)
    assert not whole and got["v"].tolist() == [3.0]
    store.redis.append(key, rec[17:])
    got, cursor, whole = store.read_since("a", cursor)
    assert not whole and got["v"].tolist() == [4.0]
    assert cursor.offset == len(store.read_raw("a"))


def test_read_since_on_a_missing_metric(store):
    rec, cursor, whole = store.read_since("nothing", Cursor())
    assert whole and len(rec) == 0 and cursor.offset == 0


def test_trim_sorts_dedupes_last_write_wins_and_cuts_window(store, redis_client):
    pts = [
        ("m", NOW - DAY - 5000, -1.0),
        ("m", NOW - 30, 1.0),
        ("m", NOW - 90, 2.0),
        ("m", NOW - 30, 3.0),
    ]
    store.append(pts)
    assert store.trim_many(["m"], NOW, DAY, 600, DAY)["rewritten"] == 1
    s = store.read("m")
    assert s.timestamps.tolist() == [NOW - 90, NOW - 30]
    assert s.values.tolist() == [2.0, 3.0]
    # already trimmed and tidy: left alone
    assert store.trim_many(["m"], NOW, DAY, 600, DAY) == {"kept": 1}


def test_trim_rewrites_oversized_series_inside_the_window(store):
    """A client resending the same points makes a series large: it is compacted."""
    store.append([("m", NOW - 60, -1.0)])
    assert store.trim_many(["m"], NOW, DAY, 600, DAY) == {"rewritten": 1}  # sealed
    store.append([("m", NOW - 60, float(i)) for i in range(500)])
    assert store.trim_many(["m"], NOW, DAY, 600, DAY) == {"kept": 1}
    assert store.trim_many(["m"], NOW, DAY, 600, DAY, max_bytes=1000)["rewritten"] == 1
    assert store.read("m").values.tolist() == [499.0]
    raw = store.read_raw("m")
    assert is_sealed(raw) and len(raw) == read_header(raw).end  # one sealed point


def test_roomba_seals_series_and_converts_the_old_format(store, redis_client):
    """Series appended raw, and series in the format before sealed blocks (records led
    by a header record), are sealed by the first pass; nothing is lost, the rewrite
    count goes on, and the sealed value is much smaller than the records."""
    t = NOW - 60 * np.arange(1440)[::-1]
    v = np.round(50 + 10 * np.sin(np.arange(1440) / 100), 2)
    store.append([("new", ts, val) for ts, val in zip(t.tolist(), v.tolist(), strict=True)])
    old = header(4) + encode(t[:-1], v[:-1]) + encode([t[-3]], [-5.0])  # a late correction
    redis_client.set(store.keys.series("old"), old)
    redis_client.sadd(store.keys.metrics(), "old")
    want_old = to_series(old)
    assert store.trim_many(["new", "old"], NOW, DAY, 600, DAY) == {"rewritten": 2}
    for name, want in (("new", (t, v)), ("old", want_old)):
        raw = store.read_raw(name)
        got = store.read(name)
        assert is_sealed(raw) and len(raw) < 1440 * 4, name
        assert got.timestamps.tolist() == np.asarray(want[0]).astype(np.int64).tolist(), name
        assert got.values.tolist() == np.asarray(want[1]).tolist(), name
    assert read_header(store.read_raw("old")).rewrites == 5
    assert store.trim_many(["new", "old"], NOW, DAY, 600, DAY) == {"kept": 2}


def test_a_damaged_sealed_block_is_reported_never_a_crash(store, redis_client, caplog):
    """Readers get an empty series and an error in the log; roomba, when the series is
    next due, keeps the raw records after the block, counts the series as corrupt and
    seals it again."""
    store.append([("m", NOW - DAY + 10, 1.0), ("m", NOW - 60, 2.0)])
    store.trim_many(["m"], NOW, DAY, 600, DAY)
    raw = bytearray(store.read_raw("m"))
    raw[30] ^= 0xFF
    redis_client.set(store.keys.series("m"), bytes(raw))
    store.append([("m", NOW, 3.0)])
    assert len(store.read_many(["m"])["m"]) == 0
    assert "cannot be read" in caplog.text
    rec, _, whole = store.read_since("m", None)
    assert whole and rec["v"].tolist() == [3.0]
    assert store.trim_many(["m"], NOW, DAY, 600, DAY) == {"kept": 1}  # not due yet
    assert store.trim_many(["m"], NOW + 700, DAY, 600, DAY) == {"rewritten": 1, "corrupt": 1}
    assert store.read("m").values.tolist() == [3.0]


def test_trim_reads_whole_only_series_that_are_due(store, redis_client):
    store.append(
        [(f"fresh.{i}", NOW - 60, 1.0) for i in range(20)]
        + [("old", NOW - DAY + 10, 1.0), ("old", NOW, 2.0)]
    )
    assert store.trim_many(store.metrics(), NOW, DAY, 600, DAY) == {"rewritten": 21}  # sealed
    before = whole_reads(redis_client)
    later = NOW + 700  # "old" is now more than the grace past the window
    assert store.trim_many(store.metrics(), later, DAY, 600, DAY) == {"kept": 20, "rewritten": 1}
    assert whole_reads(redis_client) - before == 1  # one series read whole: the one due


def whole_reads(client) -> int:
    """Whole-series reads the server has run: MGETs on a single Redis; on a cluster
    GETs (one per key, routed per node) on every master."""
    if isinstance(client, RedisCluster):
        stats = client.info("commandstats", target_nodes=RedisCluster.PRIMARIES).values()
        return sum(s.get("cmdstat_get", {}).get("calls", 0) for s in stats)
    return client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)


def test_trim_keeps_points_appended_while_it_was_rewriting(store, redis_client):
    """The rewrite script appends whatever arrived after the trimmer read the key."""
    store.append([("m", NOW - DAY - 5000, 0.0), ("m", NOW - 60, 1.0)])
    raw = store.read_raw("m")
    store.append([("m", NOW, 2.0)])  # arrives between the read and the rewrite
    body = encode([NOW - 60], [1.0])
    assert store._rewrite(keys=[store.keys.series("m")], args=[len(raw), body]) == 1
    assert store.read("m").values.tolist() == [1.0, 2.0]


def test_concurrent_appends_during_trims_lose_nothing(store, redis_client):
    """Writers append while roomba trims in a loop: every point inside the window survives."""
    store.append([("m", NOW - DAY - 5000 + i, 0.0) for i in range(100)])
    stop = threading.Event()

    def trimmer():
        while not stop.is_set():
            store.trim_many(["m"], NOW, DAY, 0, 2 * DAY)

    t = threading.Thread(target=trimmer)
    t.start()
    try:
        for i in range(2000):
            store.append([("m", NOW - 3000 + i, float(i))])
    finally:
        stop.set()
        t.join()
    store.trim_many(["m"], NOW, DAY, 0, 2 * DAY)
    s = store.read("m")
    assert s.values.tolist() == [float(i) for i in range(2000)]


def test_inactive_metrics_are_deleted(store):
    store.append([("dead", NOW - 7200, 1.0), ("alive", NOW - 60, 1.0)])
    outcome = store.trim_many(["dead", "alive", "ghost"], NOW, DAY, 600, 3600)
    assert outcome == {"deleted": 1, "rewritten": 1, "missing": 1}  # "alive" sealed
    assert store.metrics() == ["alive"]
    assert store.read_raw("dead") == b""


def test_inactive_metric_that_just_received_data_is_kept(store, redis_client):
    store.append([("m", NOW - 7200, 1.0)])
    raw = store.read_raw("m")
    store.append([("m", NOW, 2.0)])
    # the delete was planned on the old length: it must not remove fresh data
    assert store._delete_if_unchanged(keys=[store.keys.series("m")], args=[len(raw)]) == 0
    assert len(store.read("m")) == 2


def test_large_series_round_trip(store):
    ts = NOW - 60 * np.arange(1440)[::-1]
    vs = np.random.default_rng(1).normal(size=1440)
    store.append(list(zip(["big"] * 1440, ts.tolist(), vs.tolist(), strict=True)))
    s = store.read("big")
    assert s.timestamps.tolist() == ts.astype(np.int64).tolist()
    assert np.array_equal(s.values, vs)
    assert len(store.read_raw("big")) == 1440 * 12
    assert to_series(store.read_raw("big")).values[-1] == vs[-1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_read_since_many_equals_read_since_on_random_appends_and_rewrites(redis_client, seed):
    """Random appends, trims (rewrites), deletes and re-creations between reads: the
    batched reader (small chunks, so several pipelines) yields exactly what
    read_since does, metric by metric, cursor by cursor."""
    import skyline.store.timeseries as ts_mod

    rng = np.random.default_rng(seed)
    store = TimeSeriesStore(redis_client, RedisKeys("t:"))
    names = [f"m{i}" for i in range(23)] + ["never"]
    one: dict[str, Cursor | None] = dict.fromkeys(names)
    many: dict[str, Cursor | None] = dict.fromkeys(names)
    now, seen, rewrites = NOW, dict.fromkeys(names, b""), 0
    old_chunk, ts_mod.READ_CHUNK = ts_mod.READ_CHUNK, 5
    try:
        for _ in range(40):
            now += 60
            for name in rng.choice(names[:-1], size=8, replace=False).tolist():
                n = int(rng.integers(1, 4))
                store.append([(name, now - int(rng.integers(0, 3000)), float(rng.normal()))
                              for _ in range(n)])  # fmt: skip
            action = rng.random()
            if action < 0.2:
                store.trim_many(names[:-1], now, 1800, 0, DAY)
            elif action < 0.3:
                store.delete(str(rng.choice(names[:-1])))
            got = list(store.read_since_many(many))
            assert [m for m, *_ in got] == names
            for metric, rec, cursor, whole in got:
                want_rec, want_cursor, want_whole = store.read_since(metric, one[metric])
                assert (cursor, whole) == (want_cursor, want_whole), metric
                assert rec.tobytes() == want_rec.tobytes(), metric
                prev = many[metric]
                one[metric], many[metric] = want_cursor, cursor
                # the twin: what a reader accumulated is exactly the stored series
                seen[metric] = rec.tobytes() if whole else seen[metric] + rec.tobytes()
                assert seen[metric] == decode(store.read_raw(metric))[0].tobytes(), metric
                rewrites += whole and bool(prev and prev.head)
    finally:
        ts_mod.READ_CHUNK = old_chunk
    assert rewrites > 5, "the run must exercise re-reads after rewrites"


def test_read_since_many_re_reads_a_rewritten_series_whole(store):
    store.append([("a", NOW - DAY + 10, 0.0), ("a", NOW - 60, 1.0), ("b", NOW - 90, 4.0),
                  ("b", NOW - 60, 5.0)])  # fmt: skip
    assert store.trim_many(["a", "b"], NOW, DAY, 600, DAY)["rewritten"] == 2  # sealed
    cursors = {m: c for m, _, c, _ in store.read_since_many({"a": None, "b": None})}
    store.append([("a", NOW, 2.0), ("b", NOW, 6.0)])
    assert store.trim_many(["a", "b"], NOW + 700, DAY, 600, DAY)["rewritten"] == 1
    got = {m: (rec["v"].tolist(), whole) for m, rec, _, whole in store.read_since_many(cursors)}
    assert got == {"a": ([1.0, 2.0], True), "b": ([6.0], False)}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_read_tails_are_the_whole_reads_last_points(redis_client, seed, monkeypatch):
    """Random series with rewrites (a header record first), appends out of order and
    duplicated timestamps: a tail of k records holds only the whole read's points (same
    values: a timestamp's last write is in the tail) and every one of them newer than
    all the records before the tail, so, when those are older than the tail, exactly
    the whole read's last points.  Small chunks: several pipelines."""
    import skyline.store.timeseries as ts_mod

    monkeypatch.setattr(ts_mod, "READ_CHUNK", 4)
    rng = np.random.default_rng(seed)
    store = TimeSeriesStore(redis_client, RedisKeys("t:"))
    names = [f"m{i}" for i in range(11)]
    now = NOW
    for _ in range(60):
        now += 60
        for name in rng.choice(names, size=6, replace=False).tolist():
            back = 3000 if rng.random() < 0.1 else 120  # now and then a late point
            store.append([(name, now - int(rng.integers(0, back)) // 10 * 10, float(rng.normal()))
                          for _ in range(int(rng.integers(1, 5)))])  # fmt: skip
        if rng.random() < 0.15:
            store.trim_many(names, now, 1800, 0, DAY)
    checked = exact = headers = 0
    for k in (1, 2, 7, 30, 100, 10_000):
        tails = store.read_tails(names + ["absent"], k)
        assert len(tails["absent"]) == 0
        for name in names:
            raw = store.read_raw(name)
            whole, tail = store.read(name), tails[name]
            points = dict(zip(whole.timestamps.tolist(), whole.values.tolist(), strict=True))
            assert all(points[t] == v for t, v in tail.pairs()), (name, k)  # only its points
            everything, rewrites = decode(raw)
            before = everything[: max(len(everything) - k, 0)]
            newest_before = int(before["t"].max()) if len(before) else -1
            newer = [[t, v] for t, v in whole.pairs() if t > newest_before]
            assert [p for p in tail.pairs() if p[0] > newest_before] == newer, (name, k)
            if len(tail) and newest_before < tail.timestamps[0]:
                assert tail.pairs() == whole.pairs()[len(whole) - len(tail) :], (name, k)
                exact += 1
            checked += 1
            headers += rewrites > 0 and len(everything) <= k
    assert exact > checked // 2 and headers > 3, "the run must exercise both cases"
    with pytest.raises(ValueError, match="at least 1"):
        store.read_tails(names, 0)


def test_steady_state_memory_per_point_after_appends_and_roomba_passes(store, redis_client):
    """A day appended raw and sealed, then an hour and a half of one point a minute with
    a roomba pass each minute (rewrites about every 10 minutes, as horizon runs it):
    at every minute of the last half hour MEMORY USAGE stays under 12 bytes a point
    for gauges with decimals and counters (issue 18 measured 22-27 on records only),
    and the series are exactly what was appended."""
    rng = np.random.default_rng(18)
    names = [f"g{i}" for i in range(12)] + [f"c{i}" for i in range(12)]
    total = 1440 + 90
    values = [np.round(rng.uniform(1, 500) * (1 + 0.05 * rng.normal(size=total)), 2)
              for _ in range(12)]  # fmt: skip
    values += [np.cumsum(rng.poisson(rng.uniform(5, 500), total)).astype(float) for _ in range(12)]
    t = NOW - 60 * (total - 1) + 60 * np.arange(total)
    for name, v in zip(names, values, strict=True):
        redis_client.append(store.keys.series(name), encode(t[:1440], v[:1440]))
    redis_client.sadd(store.keys.metrics(), *names)
    ids = np.arange(len(names))
    worst = 0.0
    for k in range(1440, total):
        now = float(t[k])
        batch = np.array([v[k] for v in values])
        store.append_batch(ids, np.full(len(names), now), batch, names, announce=False)
        store.trim_many(names, now, DAY, 600, DAY)
        if k >= total - 30:
            usage = sum(redis_client.memory_usage(store.keys.series(n), samples=0) for n in names)
            points = sum(len(s) for s in store.read_many(names).values())
            worst = max(worst, usage / points)
    assert 0 < worst <= 12, worst
    got = store.read_many(names)
    for name, v in zip(names, values, strict=True):
        s = got[name]
        keep = t >= s.timestamps[0]
        assert s.timestamps[0] <= NOW - DAY and s.timestamps.tolist() == t[keep].tolist()
        assert s.values.tolist() == v[keep].tolist()
        assert is_sealed(store.read_raw(name))


def test_a_rewrite_that_kept_nothing_is_sealed_again_once_points_arrive(store, redis_client):
    """A series whose rewrite kept no point (all were past the window) but that
    received points after it has an empty block: the next pass seals those points,
    so it is not read whole on every pass."""
    key = store.keys.series("m")
    redis_client.set(key, seal(np.array([], np.int64), np.array([]), 3))
    redis_client.sadd(store.keys.metrics(), "m")
    store.append([("m", NOW - 60, 1.0), ("m", NOW, 2.0)])
    assert store.trim_many(["m"], NOW, DAY, 600, DAY) == {"rewritten": 1}
    assert read_header(store.read_raw("m")).block > 0
    assert store.trim_many(["m"], NOW, DAY, 600, DAY) == {"kept": 1}
    assert store.read("m").values.tolist() == [1.0, 2.0]


def test_reads_of_many_series_keep_the_order_across_mgets(store, redis_client):
    """``read_raw_many`` and ``read_many`` over more keys than one MGET holds (several
    MGETs in one round trip on a single Redis, routed GETs on the cluster): every
    value in the order asked, missing and non-string keys as None / empty (incremental
    reads too: a key of another type fails no other key's read)."""
    names = [f"many.{i}" for i in range(2 * MGET_CHUNK + 50)]
    store.append_grouped({m: ([NOW - 60.0, NOW], [float(i), float(i) + 0.5])
                          for i, m in enumerate(names)})  # fmt: skip
    store.trim_many(names[::3], NOW, DAY, 0, DAY)  # some sealed, some raw
    redis_client.hset(store.keys.series("a.hash"), "f", "v")  # not a string: no series
    asked = [*names[::-1], "absent", "a.hash", names[0]]
    raws = store.read_raw_many(asked)
    assert raws[-3:-1] == [None, None]
    assert raws == [store.read_raw(m) or None for m in asked]
    many = store.read_many(asked)
    for i, m in enumerate(names):
        assert many[m].values.tolist() == [float(i), float(i) + 0.5], m
    assert len(many["absent"]) == 0 and len(many["a.hash"]) == 0
    since = {m: (len(rec), whole) for m, rec, _, whole in
             store.read_since_many({"a.hash": None, names[1]: None})}  # fmt: skip
    assert since == {"a.hash": (0, True), names[1]: (2, True)}
    tails = store.read_tails(["a.hash", names[1]], 5)
    assert len(tails["a.hash"]) == 0 and tails[names[1]].values.tolist() == [1.0, 1.5]
    assert store.last_timestamps(["a.hash", names[1]]) == {names[1]: int(NOW)}
    redis_client.sadd(store.keys.metrics(), "a.hash")  # as a refused APPEND's batch left it
    assert store.trim_many(["a.hash", names[3]], NOW, DAY, 0, DAY) == {"missing": 1, "kept": 1}
    assert "a.hash" not in store.metrics()  # roomba drops the name, not the other's key
    assert redis_client.type(store.keys.series("a.hash")) == b"hash"
    assert Rollups(store, 600).roll_up(["a.hash", names[3]], now=NOW, retention=30 * DAY,
                                       lag=60)["metrics_read"] == 1  # names[3] only  # fmt: skip
