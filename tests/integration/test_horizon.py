"""Horizon on real sockets and a real Redis: good input lands, bad input is counted and
dropped without harming anything else, many clients at once, backpressure, stop flushes."""

from __future__ import annotations

import os
import pickle
import pickletools
import socket
import struct
import threading
import time

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyline.store.timeseries import to_series
from tests.conftest import fail_once, wait_for
from tests.integration.horizon_fixtures import (
    carbon_frame,
    horizon_env,
    now,
    running_horizon,
    send_tcp,
    send_udp,
    wait_for_points,
)


@pytest.fixture
def horizon(make_settings):
    with running_horizon(make_settings(**horizon_env())) as daemon:
        yield daemon


def ports(daemon):
    return daemon.listeners.ports


BAD_LINES = [
    b"only.two 1",
    b"four fields 1 2",
    b"nan.value nan {t}",
    b"inf.value inf {t}",
    b"word.value twelve {t}",
    b"future.ts 1 99999999999",
    b"old.ts 1 1000",
    b"bad|name 1 {t}",
    b"caf\xc3\xa9 1 {t}",
    b"\xff\xfe\x00 1 {t}",
    b"x" * 5000 + b" 1 {t}",
    b"neg.ts 1 -5",
    b"word.ts 1 yesterday",
]


def test_line_protocol_keeps_good_lines_among_bad_ones(horizon):
    t = now()
    good = [f"web.a.requests {i} {t - 60 * (5 - i)}".encode() for i in range(5)]
    bad = [line.replace(b"{t}", str(t).encode()) for line in BAD_LINES]
    lines = (
        [x for pair in zip(good, bad, strict=False) for x in pair]
        + good[len(bad) :]
        + bad[len(good) :]
    )
    send_tcp(ports(horizon)["line_port"], b"\n".join(lines) + b"\n")
    series = wait_for_points(horizon, "web.a.requests", 5)
    assert series.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    c = wait_for(
        lambda: (
            horizon.counters.peek()
            if horizon.counters.peek().get("rejected.timestamp_in_future")
            else None
        )
    )
    assert c["malformed.line_fields"] == 2
    assert c["rejected.value_not_finite"] == 2
    assert c["rejected.value_not_numeric"] == 1
    assert c["rejected.timestamp_too_old"] == 2
    assert c["rejected.name_charset"] == 1
    assert c["malformed.line_not_ascii"] == 2
    assert c["malformed.line_too_long"] == 1
    assert c["rejected.timestamp_not_numeric"] == 1
    assert horizon.store.metrics() == ["web.a.requests"]


def test_carbon_pickle_frames_land_with_the_right_values(horizon):
    t = now()
    points = [(f"carbon.agents.host{i}.cpu", (t - 60, float(i) + 0.25)) for i in range(200)]
    points += [("carbon.agents.host0.cpu", (t, 99.5))]
    send_tcp(ports(horizon)["pickle_port"], carbon_frame(points[:100]) + carbon_frame(points[100:]))
    series = wait_for_points(horizon, "carbon.agents.host0.cpu", 2)
    assert series.timestamps.tolist() == [t - 60, t] and series.values.tolist() == [0.25, 99.5]
    wait_for(lambda: len(horizon.store.metrics()) == 200)
    assert horizon.store.read("carbon.agents.host199.cpu").values.tolist() == [199.25]
    changed = {m.decode() for m in horizon.redis.smembers(horizon.keys.changed())}
    assert len(changed) == 200, "every written metric is announced to the analyzer"


class Evil:
    marker = "/tmp/skyline-horizon-test-pwned"

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_runs_nothing_and_the_connection_goes_on(horizon):
    if os.path.exists(Evil.marker):
        os.unlink(Evil.marker)
    t = now()
    evil = pickle.dumps([("x", (t, 1)), Evil()], protocol=2)
    other = socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"]))
    with socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"])) as s:
        s.sendall(carbon_frame([("before", (t, 1.0))]))
        s.sendall(struct.pack("!L", len(evil)) + evil)
        s.sendall(carbon_frame([("after", (t, 2.0))]))
    other.sendall(carbon_frame([("other.client", (t, 3.0))]))
    other.close()
    for metric in ("before", "after", "other.client"):
        wait_for_points(horizon, metric, 1)
    assert not os.path.exists(Evil.marker)
    assert horizon.counters.peek()["malformed.pickle_unsafe"] == 1
    assert "x" not in horizon.store.metrics()


def test_wrong_shapes_and_bad_values_in_a_frame_keep_the_good_items(horizon):
    t = now()
    frame = carbon_frame([("ok.1", (t, 1.0)), ("bad",), ("ok.2", (t, "2.5")), ("nan", (t, float("nan"))),
                          (7, (t, 1.0)), ("ok.3", (t, True))])  # fmt: skip
    # bytes names need protocol 3+ (protocol 2 pickles bytes through a global, refused)
    payload = pickle.dumps([(b"bytes.name", (t, 4.0))], protocol=4)
    send_tcp(ports(horizon)["pickle_port"], frame + struct.pack("!L", len(payload)) + payload)
    wait_for_points(horizon, "bytes.name", 1)
    assert horizon.store.read("ok.2").values.tolist() == [2.5]
    assert set(horizon.store.metrics()) == {"ok.1", "ok.2", "bytes.name"}


def test_oversized_length_prefix_closes_only_that_connection(horizon):
    t = now()
    good = socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"]))
    with socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"])) as bad:
        bad.sendall(struct.pack("!L", 2**31) + b"\x80\x02")
        bad.settimeout(5)
        assert bad.recv(10) == b"", "horizon closes a stream it cannot resynchronise"
    good.sendall(carbon_frame([("still.fine", (t, 1.0))]))
    good.close()
    wait_for_points(horizon, "still.fine", 1)
    assert horizon.counters.peek()["malformed.frame_too_large"] == 1


def test_client_disconnecting_mid_frame_harms_nothing(horizon):
    t = now()
    frame = carbon_frame([("half", (t, 1.0))] * 50)
    send_tcp(ports(horizon)["pickle_port"], frame[: len(frame) // 2])
    send_tcp(ports(horizon)["line_port"], b"half.line 1")  # no newline, then gone
    send_tcp(ports(horizon)["pickle_port"], carbon_frame([("whole", (t, 1.0))]))
    wait_for_points(horizon, "whole", 1)
    assert "half" not in horizon.store.metrics() and "half.line" not in horizon.store.metrics()


def test_udp_msgpack_and_plaintext(horizon):
    t = now()
    send_udp(ports(horizon)["udp_port"], msgpack.packb(["udp.msgpack", [t, 7.5]]))
    send_udp(ports(horizon)["udp_port"], f"udp.line 8.5 {t}\nbroken\n".encode())
    send_udp(ports(horizon)["udp_port"], b"\x92\xc1garbage")
    assert wait_for_points(horizon, "udp.msgpack", 1).values.tolist() == [7.5]
    assert wait_for_points(horizon, "udp.line", 1).values.tolist() == [8.5]


def test_many_concurrent_clients(horizon):
    t = now()
    clients, per_client = 40, 250

    def client(i: int) -> None:
        if i % 2:
            lines = "".join(f"c.{i} {k} {t - per_client + k}\n" for k in range(per_client))
            send_tcp(ports(horizon)["line_port"], lines.encode())
        else:
            send_tcp(ports(horizon)["pickle_port"],
                     carbon_frame([(f"c.{i}", (t - per_client + k, float(k))) for k in range(per_client)]))  # fmt: skip

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i in range(clients):
        series = wait_for_points(horizon, f"c.{i}", per_client)
        assert series.values.tolist() == [float(k) for k in range(per_client)]


def test_a_thousand_idle_connections_do_not_block_a_sender(horizon):
    idle = [
        socket.create_connection(("127.0.0.1", ports(horizon)[p]))
        for p in ("line_port", "pickle_port")
        for _ in range(500)
    ]
    try:
        wait_for(lambda: horizon.counters.peek().get("connections", 0) >= 1000)
        t = now()
        send_tcp(ports(horizon)["line_port"], f"busy.metric 1 {t}\n".encode())
        wait_for_points(horizon, "busy.metric", 1)
    finally:
        for s in idle:
            s.close()


def test_skip_lists(make_settings):
    env = horizon_env(SKYLINE__HORIZON__SKIP='["stats.statsd", "re:\\\\.tmp\\\\."]',
                      SKYLINE__HORIZON__DO_NOT_SKIP='["stats.statsd.keep"]')  # fmt: skip
    with running_horizon(make_settings(**env)) as horizon:
        t = now()
        lines = [
            f"{n} 1 {t}" for n in ("stats.statsd.bad", "a.tmp.b", "stats.statsd.keep.x", "kept")
        ]
        send_tcp(ports(horizon)["line_port"], ("\n".join(lines) + "\n").encode())
        wait_for_points(horizon, "kept", 1)
        wait_for_points(horizon, "stats.statsd.keep.x", 1)
        assert sorted(horizon.store.metrics()) == ["kept", "stats.statsd.keep.x"]
        assert horizon.counters.peek()["skipped"] == 2


def test_backpressure_pauses_reading_while_redis_is_down_and_loses_nothing(
    make_settings, private_redis
):
    env = horizon_env(SKYLINE__REDIS__URL=private_redis.url, SKYLINE__HORIZON__QUEUE_HIGH="2000",
                      SKYLINE__HORIZON__QUEUE_LOW="500", SKYLINE__HORIZON__BATCH_POINTS="500")  # fmt: skip
    with running_horizon(make_settings(**env)) as horizon:
        private_redis.stop()
        t = now()
        total = 20_000
        payload = "".join(
            f"bp.{k % 100} {k} {t - 3000 + k // 100}\n" for k in range(total)
        ).encode()
        sender = threading.Thread(target=send_tcp, args=(ports(horizon)["line_port"], payload))
        sender.start()
        wait_for(lambda: horizon.buffer.paused, timeout=10)
        accepted = horizon.counters.peek()["datapoints_accepted"]
        time.sleep(0.5)
        assert horizon.counters.peek()["datapoints_accepted"] == accepted, "no reading while paused"
        assert accepted < total, "the rest waits in the sender and the kernel's socket buffers"
        assert horizon.buffer.pending <= 2000 + 5000, "reading stops near the high watermark"
        private_redis.start()
        sender.join(30)
        wait_for(
            lambda: sum(len(horizon.store.read(f"bp.{m}")) for m in range(100)) == total, timeout=30
        )
        assert horizon.counters.peek().get("dropped.queue_full", 0) == 0
        assert horizon.counters.peek()["write_retries"] >= 1


def test_points_beyond_the_hard_limit_are_dropped_and_counted(make_settings, private_redis):
    env = horizon_env(SKYLINE__REDIS__URL=private_redis.url, SKYLINE__HORIZON__QUEUE_HIGH="900",
                      SKYLINE__HORIZON__QUEUE_LOW="100", SKYLINE__HORIZON__QUEUE_LIMIT="1000")  # fmt: skip
    with running_horizon(make_settings(**env)) as horizon:
        private_redis.stop()
        t = now()
        for k in range(30):  # UDP cannot be paused: the hard limit is what protects memory
            send_udp(
                ports(horizon)["udp_port"], "".join(f"u.{k} {i} {t}\n" for i in range(100)).encode()
            )
        wait_for(lambda: horizon.counters.peek().get("dropped.queue_full", 0) > 0)
        assert horizon.buffer.pending <= 1000
        private_redis.start()


def test_stop_flushes_everything_received(make_settings, redis_client):
    settings = make_settings(**horizon_env(SKYLINE__HORIZON__BATCH_INTERVAL="5"))
    t = now()
    with running_horizon(settings) as horizon:
        send_tcp(
            ports(horizon)["line_port"],
            "".join(f"flush.{i} {i} {t}\n" for i in range(3000)).encode(),
        )
        wait_for(lambda: horizon.counters.peek().get("datapoints_accepted", 0) == 3000)
        assert len(horizon.store.metrics()) < 3000, "the batch is still open (interval 5 s)"
    # stopped: everything accepted has been written
    flushed = [m for m in horizon.store.metrics() if m.startswith("flush.")]
    assert len(flushed) == 3000
    assert (
        "skyline.horizon." + horizon.settings.host_name + ".datapoints_written"
        in horizon.store.metrics()
    )
    assert to_series(redis_client.get(horizon.keys.series("flush.2999"))).values.tolist() == [
        2999.0
    ]


def test_roomba_runs_in_the_daemon(make_settings):
    env = horizon_env(
        SKYLINE__HORIZON__ROOMBA_INTERVAL="1", SKYLINE__SKYLINE__METRICS_INACTIVE_AFTER="600"
    )
    with running_horizon(make_settings(**env)) as horizon:
        t = now()
        horizon.store.append([("inactive", t - 3000, 1.0), ("active", t, 1.0)])
        wait_for(lambda: horizon.store.metrics() == ["active"], timeout=10)
        assert horizon.counters.peek()["roomba.deleted"] >= 1


def test_port_taken_is_one_line_naming_the_key(make_settings):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        env = horizon_env(SKYLINE__HORIZON__PICKLE_PORT=str(holder.getsockname()[1]))
        from skyline.ingest.horizon.agent import Horizon

        daemon = Horizon(make_settings(**env))
        assert daemon.run() == 1
    finally:
        holder.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=5))
def test_arbitrary_bytes_on_every_port_then_valid_data_still_lands(horizon, chunks):
    for chunk in chunks:
        for port in ("line_port", "pickle_port"):
            try:
                send_tcp(ports(horizon)[port], chunk)
            except OSError:
                pass  # horizon may close a stream whose length prefix is absurd
        send_udp(ports(horizon)["udp_port"], chunk)
    t = now()
    marker = f"alive.{abs(hash(tuple(chunks))) % 10**9}"
    send_tcp(ports(horizon)["line_port"], f"{marker} 1 {t}\n".encode())
    send_tcp(ports(horizon)["pickle_port"], carbon_frame([(marker + ".p", (t, 1.0))]))
    wait_for_points(horizon, marker, 1)
    wait_for_points(horizon, marker + ".p", 1)


# Issue 15 item 1: numbers a pickle can carry that float() cannot hold (OverflowError).
HUGE_PICKLE_ITEMS = [
    (("huge.value", ("{t}", 10**400)), "rejected.value_not_finite"),
    (("huge.negative.value", ("{t}", -(10**400))), "rejected.value_not_finite"),
    (("huge.ts", (10**400, 1.0)), "rejected.timestamp_in_future"),
    (("huge.negative.ts", (-(10**400), 1.0)), "rejected.timestamp_too_old"),
    (("huge.both", (10**400, 10**400)), "rejected.value_not_finite"),
    (("word.value.huge.ts", (10**400, "x")), "rejected.value_not_numeric"),
]


def test_huge_integers_in_a_pickle_frame_drop_only_themselves(horizon):
    t = now()
    hostile = [
        (name, tuple(t if x == "{t}" else x for x in point))
        for (name, point), _ in HUGE_PICKLE_ITEMS
    ]
    items = [("good.before", (t, 1.0)), *hostile, ("good.after", (t, 2.0))]
    with socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"])) as s:
        s.sendall(carbon_frame(items))
        s.sendall(carbon_frame([("good.next.frame", (t, 3.0))]))
        s.sendall(carbon_frame([("good.next.frame", (t + 1, 4.0))]))
    for metric, n in (("good.before", 1), ("good.after", 1), ("good.next.frame", 2)):
        wait_for_points(horizon, metric, n)
    c = horizon.counters.peek()
    expected: dict[str, int] = {}
    for _, counter in HUGE_PICKLE_ITEMS:
        expected[counter] = expected.get(counter, 0) + 1
    assert {k: c.get(k, 0) for k in expected} == expected
    assert c.get("connections_accepted") == 1


# Issue 15 item 9: unsafe pickles are counted every time but logged a few times a minute.
UNSAFE_PAYLOADS = [
    pickle.dumps([Evil()], protocol=2),
    pickle.dumps(os.system, protocol=2),
    b"\x80\x02cos\nsystem\nq\x00.",
    pickle.dumps([("x", (1, Evil()))], protocol=4),
]


def test_a_flood_of_unsafe_pickles_cannot_flood_the_log(horizon, caplog):
    from skyline.ingest.horizon.intake import LOG_PER_REASON_PER_MINUTE

    t = now()
    frames = b"".join(struct.pack("!L", len(p)) + p for p in UNSAFE_PAYLOADS * 50)
    with caplog.at_level("INFO"):
        with socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"])) as s:
            s.sendall(frames + carbon_frame([("after.the.flood", (t, 1.0))]))
        wait_for_points(horizon, "after.the.flood", 1)
    assert horizon.counters.peek()["malformed.pickle_unsafe"] == len(UNSAFE_PAYLOADS) * 50
    # the drops' lines only: the listener's "listening on ... pickle_port=" line may
    # land in the capture too when its thread logs late
    logged = [r for r in caplog.records if "malformed.pickle_unsafe" in r.getMessage()]
    assert 1 <= len(logged) <= LOG_PER_REASON_PER_MINUTE
    assert all(len(r.getMessage()) < 300 for r in logged), "logged truncated"


def _opcodes(obj: object) -> bytes:
    """``obj`` pickled (protocol 2) without its header and STOP, to splice into a frame."""
    return pickletools.optimize(pickle.dumps(obj, protocol=2))[2:-1]


def _reference_bomb() -> bytes:
    """A few KB whose text rendering would be about 10**12 characters: a list holding
    the same list 1000 times, three levels deep (memo references)."""
    level: object = "x" * 1000
    for _ in range(3):
        level = [level] * 1000
    return _opcodes(level)


# Rejected items are logged: rendering them must neither raise nor blow up.
UNRENDERABLE = {
    "int_5000_digits": _opcodes(10**5000),
    "nested_100000_deep": b"]" * 100_000 + b"a" * 99_999,
    "reference_bomb": _reference_bomb(),
}


@pytest.mark.parametrize("value", UNRENDERABLE.values(), ids=UNRENDERABLE.keys())
def test_an_item_that_cannot_be_rendered_drops_only_itself(horizon, value):
    t = now()
    hostile = _opcodes("hostile") + _opcodes(t) + value + b"\x86\x86"  # (name, (t, value))
    hostile += value + _opcodes((t, 1.0)) + b"\x86"  # (value, (t, 1.0))
    payload = b"\x80\x02](" + _opcodes(("good.before", (t, 1.0))) + hostile
    payload += _opcodes(("good.after", (t, 2.0))) + b"e."
    assert len(payload) < 1_000_000, "within max_pickle_frame"
    with socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"])) as s:
        s.sendall(struct.pack("!L", len(payload)) + payload)
        s.sendall(carbon_frame([("good.next.frame", (t, 3.0))]))
    for metric in ("good.before", "good.after", "good.next.frame"):
        wait_for_points(horizon, metric, 1)
    c = horizon.counters.peek()
    assert c.get("rejected.value_not_numeric", 0) + c.get("rejected.value_not_finite", 0) == 1
    assert c["rejected.name_charset"] == 1
    assert c.get("connections_accepted") == 1


def test_long_number_text_referenced_many_times_is_refused_unparsed(horizon):
    """A pickle frame can name one long string many times (memo references): parsing
    it as a number for every reference would hold the listeners for minutes."""
    t = now()
    digits = "1" * 400_000  # one string, pickled once
    slow = [("slow.value", (t, digits)), ("slow.ts", (digits, 1.0))]
    payload = pickle.dumps(slow * 125_000 + [("good.after", (t, 2.0))], protocol=2)
    assert len(payload) < 1_000_000, "within max_pickle_frame"
    with socket.create_connection(("127.0.0.1", ports(horizon)["pickle_port"])) as s:
        s.sendall(struct.pack("!L", len(payload)) + payload)
    send_tcp(ports(horizon)["line_port"], f"good.line 1 {t}\n".encode())
    wait_for_points(horizon, "good.after", 1)
    wait_for_points(horizon, "good.line", 1)
    c = horizon.counters.peek()
    assert c["rejected.value_not_numeric"] == c["rejected.timestamp_not_numeric"] == 125_000


def test_a_full_redis_pauses_writing_and_loses_nothing_once_it_has_room(make_settings,
                                                                          private_redis):  # fmt: skip
    """Redis at ``maxmemory`` refuses every APPEND (an OOM error reply): the writers
    wait and retry as for an outage, the points stay queued, and all land when room is
    made (the writer threads must survive the error)."""
    env = horizon_env(SKYLINE__REDIS__URL=private_redis.url)
    with running_horizon(make_settings(**env)) as horizon:
        admin = redis.Redis.from_url(private_redis.url)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # below what is used: every write refused
        t = now()
        send_tcp(ports(horizon)["line_port"], b"".join(
            b"full.%d %d %d\n" % (k % 10, k, t - 600 + k // 10) for k in range(200)))  # fmt: skip
        wait_for(lambda: horizon.counters.peek().get("write_retries", 0) >= 2)
        assert horizon.store.metrics() == []
        admin.config_set("maxmemory", 0)
        wait_for(lambda: sum(len(horizon.store.read(f"full.{m}")) for m in range(10)) == 200)
        assert all(w.is_alive() for w in horizon.writers)


def test_a_key_of_another_type_drops_only_its_own_points(horizon, caplog):
    """A series key that something else wrote as another type (a hash here) refuses
    its APPEND: that metric's points are dropped, counted and logged; every other
    metric in the same batches is stored, and the writers go on."""
    horizon.redis.hset(horizon.keys.series("foreign.key"), "f", "v")
    t = now()
    for k in range(3):
        send_tcp(ports(horizon)["line_port"],
                 b"ok.a %d %d\nforeign.key 1 %d\nok.b %d %d\n" % (k, t - 180 + 60 * k,
                                                                  t - 180 + 60 * k, k, t - 180 + 60 * k))  # fmt: skip
        wait_for_points(horizon, "ok.b", k + 1)
    assert wait_for_points(horizon, "ok.a", 3).values.tolist() == [0.0, 1.0, 2.0]
    wait_for(lambda: horizon.counters.peek().get("dropped.wrong_type") == 3)
    assert horizon.redis.type(horizon.keys.series("foreign.key")) == b"hash"
    assert "foreign.key" in caplog.text and "another type" in caplog.text
    assert all(w.is_alive() for w in horizon.writers)


def test_a_bug_while_writing_drops_that_batch_and_the_writers_go_on(horizon, monkeypatch,
                                                                   caplog):  # fmt: skip
    """The store raising something that is not an outage (a bug, forced once): that
    batch is dropped, counted and logged with its traceback; the writer threads go on
    and later points are stored (retrying the batch for ever would stop ingest)."""
    fail_once(monkeypatch, horizon.store, "append_batch", RuntimeError("a bug in the store"))
    t = now()
    send_tcp(ports(horizon)["line_port"], b"lost.a 1 %d\n" % (t - 120))
    wait_for(lambda: horizon.counters.peek().get("dropped.error") == 1)
    send_tcp(ports(horizon)["line_port"], b"kept.a 2 %d\n" % (t - 60))
    assert wait_for_points(horizon, "kept.a", 1).values.tolist() == [2.0]
    assert len(horizon.store.read("lost.a")) == 0 and horizon.counters.peek()["errors"] == 1
    assert "a bug in the store" in caplog.text and "(dropped)" in caplog.text
    assert all(w.is_alive() for w in horizon.writers)


def test_a_bug_in_sealing_due_batches_does_not_stop_the_ticks(horizon, monkeypatch, caplog):
    """Sealing due batches raises once (a bug, forced): counted and logged, and the
    listeners' tick goes on sealing, so a lone point is still written within the batch
    interval (without the tick it would wait for the batch to fill)."""
    calls = fail_once(monkeypatch, horizon.buffer, "seal_if_due", RuntimeError("a bug in sealing"))
    wait_for(lambda: len(calls) > 1)
    send_tcp(ports(horizon)["line_port"], b"lone.point 1 %d\n" % (now() - 60))
    assert wait_for_points(horizon, "lone.point", 1).values.tolist() == [1.0]
    assert horizon.counters.peek()["errors"] == 1 and "a bug in sealing" in caplog.text


def test_a_read_only_redis_pauses_writing_until_it_is_a_master_again(make_settings,
                                                                     private_redis):  # fmt: skip
    """Redis turned into a replica (a failover) answers READONLY to every write: the
    writers wait and retry, reconnecting each time, and everything lands once it is a
    master again."""
    env = horizon_env(SKYLINE__REDIS__URL=private_redis.url)
    with running_horizon(make_settings(**env)) as horizon:
        admin = redis.Redis.from_url(private_redis.url)
        admin.replicaof("127.0.0.1", "1")  # a master that does not exist: read-only
        t = now()
        send_tcp(ports(horizon)["line_port"], b"".join(
            b"ro.%d %d %d\n" % (k % 10, k, t - 600 + k // 10) for k in range(200)))  # fmt: skip
        wait_for(lambda: horizon.counters.peek().get("write_retries", 0) >= 2)
        admin.replicaof("NO", "ONE")
        wait_for(lambda: sum(len(horizon.store.read(f"ro.{m}")) for m in range(10)) == 200)
        assert all(w.is_alive() for w in horizon.writers)
