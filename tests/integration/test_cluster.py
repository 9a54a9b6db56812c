"""Skyline on a real Redis Cluster (3 masters, 3 replicas on loopback, tests/cluster.py):
the settings that name one, the client, and every Redis usage that a cluster treats
differently from a single Redis -- multi-key reads, Lua scripts, single-key
transactions, streams read together, and the raw RESP fast paths routed per node."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

from skyline.alerting.pending import Delivery
from skyline.analysis.algorithms.state import last_learned
from skyline.analysis.analyzer.detect import DetectorPass, make_detector
from skyline.events.streams import StreamConsumer
from skyline.ingest.flux.server import take_worker_counters
from skyline.ingest.vista import cursor
from skyline.ingest.vista.route import roll_in
from skyline.settings import SettingsError, load_settings
from skyline.store.cluster import execute_routed
from skyline.store.connection import connect, connect_cluster
from skyline.store.keys import RedisKeys
from skyline.store.raw import get
from skyline.store.rollups import Rollups
from skyline.store.timeseries import TimeSeriesStore, decode
from tests.cluster import RedisClusterNodes
from tests.conftest import free_port, wait_for

NOW = 1_800_000_000
DAY = 86400


@pytest.fixture
def settings(make_settings, cluster_url):
    return make_settings(SKYLINE__REDIS__URL=cluster_url)


@pytest.fixture
def client(settings):
    c = connect(settings)
    yield c
    c.close()


@pytest.fixture
def store(client) -> TimeSeriesStore:
    return TimeSeriesStore(client, RedisKeys("sky:"))


def test_cluster_named_by_list_or_url_gives_a_cluster_client(tmp_path, redis_cluster):
    base = {"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path)}
    listed = f'["{redis_cluster.startup_nodes[0]}", "{redis_cluster.startup_nodes[3]}"]'
    by_list = load_settings(env={**base, "SKYLINE__REDIS__CLUSTER": listed})
    by_url = load_settings(env={**base, "SKYLINE__REDIS__URL": redis_cluster.url})
    assert not by_list.redis_embedded and not by_url.redis_embedded
    assert by_url.redis.cluster_nodes[0] == ("127.0.0.1", redis_cluster.nodes[0].port)
    for s in (by_list, by_url):
        c = connect(s)
        assert isinstance(c, RedisCluster) and len(c.get_primaries()) == 3
        c.close()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SKYLINE__REDIS__CLUSTER": '["no-port"]'}, "is not host:port"),
        ({"SKYLINE__REDIS__CLUSTER": '["h:99999"]'}, "is not host:port"),
        ({"SKYLINE__REDIS__CLUSTER": '["h:x"]'}, "is not host:port"),
        ({"SKYLINE__REDIS__URL": "redis+cluster://h:1,:7000"}, "is not host:port"),
        (
            {"SKYLINE__REDIS__CLUSTER": '["h:7000"]', "SKYLINE__REDIS__URL": "redis://h:6379"},
            "both name a Redis",
        ),
    ],
)
def test_malformed_cluster_settings_are_refused_with_the_reason(tmp_path, env, says):
    with pytest.raises(SettingsError, match=says):
        load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path), **env})


def test_no_node_answering_is_a_connection_error_naming_the_nodes(tmp_path):
    port = free_port()  # nothing listens there
    s = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path),
                           "SKYLINE__REDIS__CLUSTER": f'["127.0.0.1:{port}"]',
                           "SKYLINE__REDIS__SOCKET_TIMEOUT": "0.5"})  # fmt: skip
    with pytest.raises(redis.ConnectionError, match=f"127.0.0.1:{port}"):
        connect_cluster(s, attempts=1)


def _per_master(nodes: RedisClusterNodes, pattern: str) -> list[int]:
    return [
        len(list(n.client().scan_iter(match=pattern, count=1000))) for n in nodes.master_nodes()
    ]


def test_append_batch_spreads_series_over_every_master(store, redis_cluster):
    names = [f"web{i}.latency" for i in range(300)]
    ids = np.repeat(np.arange(300), 3)
    ts = NOW - 60 * np.tile([2, 1, 0], 300)
    written = store.append_batch(ids, ts, ids * 1.0, names, changed=True)
    assert written == 900
    spread = _per_master(redis_cluster, "sky:ts:*")
    assert sum(spread) == 300 and min(spread) > 50  # every master holds a share
    assert store.metrics() == sorted(names)
    many = store.read_many(names)
    assert all(many[n].values.tolist() == [float(i)] * 3 for i, n in enumerate(names))
    assert set(store.last_timestamps(names).values()) == {NOW}


def test_routed_raw_commands_keep_the_order_and_return_error_replies(client):
    keys = [f"sky:k{i}".encode() for i in range(50)]
    client.set("sky:k7", "seven")
    client.rpush("sky:k9", "a list")  # GET of a list: an error reply, in its place
    replies = execute_routed(client, keys, [get(k) for k in keys])
    assert replies[7] == b"seven"
    assert isinstance(replies[9], redis.ResponseError)
    assert [r for i, r in enumerate(replies) if i not in (7, 9)] == [None] * 48


def test_trim_scripts_and_rollups_run_on_the_cluster(store):
    """The rewrite/delete scripts and the rollup scripts go as EVAL in cluster pipelines."""
    old = {f"old{i}": ([NOW - DAY - 4000.0, NOW - 60.0], [1.0, 2.0]) for i in range(40)}
    gone = {f"gone{i}": ([NOW - 3 * DAY + 0.0], [1.0]) for i in range(40)}
    store.append_grouped({**old, **gone})
    outcome = store.trim_many(store.metrics(), NOW, DAY, 600, 2 * DAY)
    assert outcome == {"rewritten": 40, "deleted": 40}
    assert store.read("old3").values.tolist() == [2.0]
    series = {f"r{i}": (NOW - 60.0 * np.arange(2 * 1440)[::-1]).tolist() for i in range(30)}
    store.append_grouped({m: (t, [5.0] * len(t)) for m, t in series.items()})
    rollups = Rollups(store, 600)
    counts = rollups.roll_up(list(series), NOW, retention=30 * DAY, lag=60)
    assert counts["metrics_updated"] == 30 and counts["buckets_written"] > 30 * 100
    assert set(rollups.read("r5").values.tolist()) == {5.0}


def test_two_streams_read_together_through_one_consumer_group(client):
    keys = RedisKeys("sky:")
    streams = [keys.anomalies_stream(), keys.verdicts_stream()]
    assert {client.keyslot(s) for s in streams} == {client.keyslot("{stream}")}
    consumer = StreamConsumer(client, streams, "panorama", "c1", claim_idle_ms=1)
    consumer.ensure_groups()
    for i in range(3):
        client.xadd(streams[i % 2], {"n": str(i)})
    consumer._own_pending = False
    got = consumer.read(block_ms=100)
    assert sorted(f[b"n"] for _, _, f in got) == [b"0", b"1", b"2"]
    assert consumer.pending_count() == 3
    other = StreamConsumer(client, streams, "panorama", "c2", claim_idle_ms=1)
    other._own_pending = False
    # XAUTOCLAIM takes only entries idle for claim_idle_ms: the read above may be less than
    # a millisecond ago (Redis counts whole milliseconds)
    wait_for(lambda: all(row["time_since_delivered"] >= 1 for s in streams
                         for row in client.xpending_range(s, "panorama", "-", "+", 10)))  # fmt: skip
    assert len(other.read(block_ms=10)) == 3  # a dead consumer's entries are claimed
    for stream, entry_id, _ in got:
        other.ack(stream, entry_id)
    assert other.pending_count() == 0


def test_single_key_transactions_work_on_the_cluster(client, settings):
    keys = RedisKeys("sky:")
    d = Delivery(client, keys, "slack", "ev1", lease_seconds=10).open(NOW, 600)
    assert d.status == "pending" and d.fields["attempt"] == "0"
    cursor.begin(client, keys, "prom")
    cursor.commit(client, keys, "prom", NOW, {"a.b": NOW - 60.0})
    assert client.hgetall(keys.vista_cursor("prom")) == {b"": b"1800000000.0",
                                                         b"a.b": b"1799999940.0"}  # fmt: skip
    client.hincrbyfloat(keys.counters("flux-http"), "accepted", 3)
    assert take_worker_counters(client, keys) == {"accepted": 3.0}
    store = TimeSeriesStore(client, keys)
    t = NOW - 60 * np.arange(4000, 2000, -1).astype(float)
    assert roll_in(store, settings, "old.metric", t, np.ones(len(t)), NOW) > 0  # WATCH/MULTI


def test_detector_state_saved_and_loaded_across_nodes(client, store):
    keys = RedisKeys("sky:")
    metrics = [f"m{i}" for i in range(120)]
    ts = NOW - 60.0 * np.arange(200)[::-1]
    rng = np.random.default_rng(5)
    store.append_grouped({m: (ts.tolist(), rng.normal(10, 1, 200).tolist()) for m in metrics})
    first = DetectorPass(client, keys, store, make_detector(), 10.0, 3600)
    first.run(metrics)
    assert {last_learned(client.get(keys.detector_state(m))) for m in metrics} == {ts[-1]}
    store.append_grouped({m: ([NOW + 60.0], [10.0]) for m in metrics})
    again = DetectorPass(client, keys, store, make_detector(), 10.0, 3600)  # no cache
    again.run(metrics)
    assert again.counts.judged == 120  # one new point each: the saved states were loaded


def test_incremental_reads_across_nodes_follow_appends_and_rewrites(client, store):
    """Cursors on a cluster: tails and heads routed to each key's node, a rewritten
    series re-read whole (its GET routed too); what a reader accumulates is exactly
    the stored series."""
    metrics = [f"inc{i}" for i in range(60)]
    rng = np.random.default_rng(8)
    store.append_grouped({m: ([NOW - 7200.0, NOW - 3600.0], [1.0, 2.0]) for m in metrics})
    cursors = dict.fromkeys(metrics)
    seen = dict.fromkeys(metrics, b"")
    rewritten = 0
    for step in range(4):
        got = list(store.read_since_many(cursors))
        assert [m for m, *_ in got] == metrics
        for m, rec, cur, whole in got:
            rewritten += whole and step > 0
            seen[m] = rec.tobytes() if whole else seen[m] + rec.tobytes()
            assert seen[m] == decode(store.read_raw(m))[0].tobytes(), m
            cursors[m] = cur
        store.append_grouped({m: ([NOW + 60.0 * step], [float(rng.normal())]) for m in metrics})
        if step == 1:  # seal (rewrite) every series: each head changes
            assert store.trim_many(metrics, NOW + 60.0, 86400, 0, 86400)["rewritten"] == 60
    assert rewritten == 60


def test_a_daemon_waits_for_a_cluster_that_does_not_answer_yet(private_cluster, tmp_path):
    """Every node down when a daemon starts: connect keeps trying (patient), and returns
    a working client once the nodes are back, instead of the daemon exiting."""
    s = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path),
                           "SKYLINE__REDIS__URL": private_cluster.url,
                           "SKYLINE__REDIS__SOCKET_TIMEOUT": "1",
                           "SKYLINE__SKYLINE__RETRY_BACKOFF_MAX": "0.5"})  # fmt: skip
    for node in private_cluster.nodes:
        private_cluster.kill(node)
    got: list[object] = []
    waiting = threading.Thread(target=lambda: got.append(connect(s, patient=True)), daemon=True)
    waiting.start()
    waiting.join(2.0)
    assert waiting.is_alive() and not got  # still trying, not failed
    for node in private_cluster.nodes:
        private_cluster.restart(node)
    waiting.join(60)
    assert got, "connect did not return once the cluster was back"
    private_cluster.wait_ok()
    client = got[0]
    assert isinstance(client, RedisCluster)

    def written() -> bool:
        try:
            return bool(client.set("sky:back", "1"))
        except redis.RedisError:  # the cluster still settling: CLUSTERDOWN, refused
            return False

    wait_for(written, timeout=30)
    assert client.get("sky:back") == b"1"
