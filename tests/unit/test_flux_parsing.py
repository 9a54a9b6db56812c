"""flux's pure parts: StatsD parsing and aggregation, Influx line protocol, names,
body limits and key hashing."""

from __future__ import annotations

import gzip
import io
import math

import pytest

from skyline.ingest.flux.influx import graphite_name, parse_line
from skyline.ingest.flux.keys import KEY_RE, generate_key, hash_key
from skyline.ingest.flux.limits import HttpError, decode_body, gunzip, read_body
from skyline.ingest.flux.statsd import Aggregator, clean_name, parse_packet, timer_stats
from skyline.runtime.daemon import Counters

STATSD_BAD = [
    (b"nocolon", "no_value"),
    (b":1|c", "no_name"),
    (b"a:1", "no_type"),
    (b"a:1|q", "unknown_type"),
    (b"a:x|c", "value_not_numeric"),
    (b"a:inf|g", "value_not_finite"),
    (b"a:1|c|@2", "bad_sample_rate"),
    (b"a:1|c|@x", "bad_sample_rate"),
    (b"\xff\xfe:1|c", "not_utf8"),
]


@pytest.mark.parametrize(("line", "reason"), STATSD_BAD)
def test_statsd_bad_lines(line: bytes, reason: str) -> None:
    samples, bad = parse_packet(line + b"\nok:1|c")
    assert [s.name for s in samples] == ["ok"]
    assert bad == [(reason, line)]


def test_statsd_aggregation_names_and_values() -> None:
    samples, bad = parse_packet(
        b"hits:2|c|@0.5\nhits:1|c\ng:10|g\ng:-3|g\ng2:+4|g\nt:10|ms:20|ms\nu:a|s\nu:b|s\n"
        b"my host/x:1|c|#tag:v"
    )
    assert not bad
    agg = Aggregator(Counters(), [90, 99.5], 100, 3600)
    agg.add(samples, now=1000)
    out = {name: v for name, _, v in agg.flush(1000.4, 10)}
    assert out["stats_counts.hits"] == 5 and out["stats.hits"] == 0.5
    assert out["stats.gauges.g"] == 7 and out["stats.gauges.g2"] == 4
    assert out["stats.timers.t.mean"] == 15 and out["stats.timers.t.count_ps"] == 0.2
    assert out["stats.timers.t.upper_99_5"] == 20
    assert out["stats.sets.u.count"] == 2
    assert out["stats_counts.my_host-x"] == 1
    again = {name for name, _, _ in agg.flush(1010, 10)}
    assert again == {"stats.gauges.g", "stats.gauges.g2"}  # gauges are re-sent
    assert agg.flush(1000 + 3601 + 10, 10) == []  # ... until idle


def test_statsd_limits_distinct_names() -> None:
    counters = Counters()
    agg = Aggregator(counters, [], 2, 3600)
    agg.add(parse_packet(b"a:1|c\nb:1|c\nc:1|c\na:1|c")[0])
    assert {n for n, _, _ in agg.flush(0, 1)} == {"stats.a", "stats_counts.a", "stats.b",
                                                  "stats_counts.b"}  # fmt: skip
    assert counters.peek()["statsd.dropped.too_many_metrics"] == 1


# Issue 15 item 3: timer values a float can hold but whose squares or sums it cannot.
HOSTILE_TIMERS = [
    b"huge:1e155|ms:0|ms",
    b"huge:1e154|ms:-1e154|ms",
    b"huge:1.7e308|ms:-1.7e308|ms:1.7e308|ms",
    b"huge:-1e200|ms:1e-300|ms",
    b"huge:1e308|ms:1e308|ms|@0.001",
]


@pytest.mark.parametrize("packet", HOSTILE_TIMERS)
def test_a_hostile_timer_loses_no_other_aggregate(packet: bytes) -> None:
    samples, bad = parse_packet(packet + b"\nhits:3|c\nu:a|s\nt:10|ms:20|ms\ng:5|g")
    assert not bad
    agg = Aggregator(Counters(), [90], 100, 3600)
    agg.add(samples, now=1000)
    out = {name: v for name, _, v in agg.flush(1000, 10)}
    assert out["stats_counts.hits"] == 3 and out["stats.sets.u.count"] == 1
    assert out["stats.timers.t.mean"] == 15 and out["stats.gauges.g"] == 5
    huge = {k: v for k, v in out.items() if k.startswith("stats.timers.huge.")}
    assert math.isfinite(huge["stats.timers.huge.std"])
    assert math.isfinite(huge["stats.timers.huge.mean"])
    assert math.isfinite(huge["stats.timers.huge.mean_90"])


def test_timer_stats_percentile() -> None:
    stats = dict(timer_stats([float(v) for v in range(1, 11)], 10, 1, [90]))
    assert stats["upper_90"] == 9 and stats["count_90"] == 9 and stats["median"] == 5.5


def test_clean_name() -> None:
    assert clean_name("a b/c$d") == "a_b-cd"


INFLUX_OK = [
    ("cpu v=1 10", ("cpu", {}, {"v": 1.0}, 10)),
    ("cpu,host=a,x=y v=1i,s=\"a b, c\",b=t", ("cpu", {"host": "a", "x": "y"}, {"v": 1.0, "s": None, "b": None}, None)),
    ("m\\ x,t\\,1=a\\ b f=-1.5e3", ("m x", {"t,1": "a b"}, {"f": -1500.0}, None)),
]  # fmt: skip


@pytest.mark.parametrize(("line", "want"), INFLUX_OK)
def test_influx_parse(line: str, want: tuple) -> None:
    assert parse_line(line) == want


INFLUX_BAD = [
    ("cpu", "line_fields"),
    ("cpu v=1 2 3", "line_fields"),
    (",t=1 v=1", "no_measurement"),
    ("cpu,t v=1", "bad_tag"),
    ("cpu v", "bad_field"),
    ("cpu v=abc", "bad_field_value"),
    ("cpu v=1 nope", "bad_timestamp"),
    ('cpu s="open', "unterminated_string"),
]


@pytest.mark.parametrize(("line", "reason"), INFLUX_BAD)
def test_influx_parse_errors(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_line(line)


def test_graphite_name_template() -> None:
    tags = {"host": "web.1", "cpu": "cpu/0", "region": "eu"}
    assert graphite_name("cpu", tags, "usage idle") == "web_1.cpu-0.eu.cpu.usage_idle"
    assert graphite_name("disk", {}, "value") == "disk"


def test_body_limits() -> None:
    assert read_body(io.BytesIO(b"x" * 10), None, 10) == b"x" * 10
    with pytest.raises(HttpError) as exc:
        read_body(io.BytesIO(b"x" * 11), None, 10)
    assert exc.value.status == 413
    with pytest.raises(HttpError) as exc:
        read_body(io.BytesIO(b""), 1000, 10)  # announced length refused before reading
    assert exc.value.status == 413
    assert gunzip(gzip.compress(b"abc"), 3) == b"abc"
    with pytest.raises(HttpError) as exc:
        gunzip(gzip.compress(b"\0" * 10_000_000), 1024)
    assert (exc.value.status, exc.value.reason) == (413, "decompressed_too_large")
    with pytest.raises(HttpError) as exc:
        decode_body(b"x", "zstd", 10)
    assert exc.value.status == 415


def test_keys_are_random_and_hashed() -> None:
    a, b = generate_key(), generate_key()
    assert a != b and KEY_RE.fullmatch(a)
    assert hash_key(a) == hash_key(a) != hash_key(b)
    assert a not in hash_key(a) and hash_key(a).startswith("hmac-sha256:")
