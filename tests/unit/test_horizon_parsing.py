"""Horizon's wire-format parsers: tables of invalid input, and arbitrary bytes never raise."""

from __future__ import annotations

import pickle
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyline.ingest.horizon.parsing import Malformed
from skyline.ingest.horizon.protocols.carbon_pickle import (
    FrameSplitter,
    FrameTooLarge,
    pickle_items,
)
from skyline.ingest.horizon.protocols.line import LineSplitter, parse_line, parse_lines
from skyline.ingest.horizon.protocols.udp import datagram_items
from skyline.ingest.horizon.unpickler import UnsafePickle, loads
from skyline.store.name_filter import NameFilter


def frame(obj: object, protocol: int = 2) -> bytes:
    payload = pickle.dumps(obj, protocol=protocol)
    return struct.pack("!L", len(payload)) + payload


# --- plaintext lines -----------------------------------------------------------------
def test_good_line_gives_name_timestamp_value():
    assert parse_line(b"servers.a.load 1.5 1700000000") == ("servers.a.load", b"1700000000", b"1.5")
    assert parse_line(b"x\t2\t3") == ("x", b"3", b"2")


INVALID_LINES = [
    (b"", Malformed.LINE_FIELDS),
    (b"just.a.name", Malformed.LINE_FIELDS),
    (b"name 1", Malformed.LINE_FIELDS),
    (b"name 1 2 3", Malformed.LINE_FIELDS),
    (b"caf\xc3\xa9 1 2", Malformed.LINE_NOT_ASCII),
    (b"\xff\xfe 1 2", Malformed.LINE_NOT_ASCII),
]


@pytest.mark.parametrize(("line", "reason"), INVALID_LINES)
def test_invalid_lines(line, reason):
    assert parse_line(line) == reason


def test_line_splitter_handles_partial_and_too_long_lines():
    sp = LineSplitter(max_length=20)
    assert sp.feed(b"a 1 2\nb 1") == ([b"a 1 2"], 0)
    assert sp.feed(b" 2\n\n") == ([b"b 1 2"], 0)
    lines, too_long = sp.feed(b"x" * 50)  # an over-long line without its newline yet
    assert lines == [] and too_long == 1
    lines, too_long = sp.feed(b"y" * 50 + b"\nc 1 2\n")  # rest of it is dropped, once
    assert lines == [b"c 1 2"] and too_long == 0
    assert sp.feed(b"z" * 30 + b"\nd 1 2\n") == ([b"d 1 2"], 1)


# --- pickle frames ---------------------------------------------------------------------
def test_carbon_pickle_items():
    items, bad, refused = pickle_items(pickle.dumps([("a.b", (1700000000, 1.5)), ("c", (1, 2))], 2))
    assert items == [("a.b", 1700000000, 1.5), ("c", 1, 2)] and bad == 0 and refused is None


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/skyline-pwned",))


INVALID_PAYLOADS = [
    (pickle.dumps([Evil()], 2), Malformed.PICKLE_UNSAFE),
    (pickle.dumps(Evil(), 4), Malformed.PICKLE_UNSAFE),
    (
        pickle.dumps({1, 2}, 2),
        Malformed.PICKLE_UNSAFE,
    ),  # sets need the builtins global in protocol 2
    (pickle.dumps(frozenset(), 4), Malformed.PICKLE_SHAPE),
    (b"", Malformed.PICKLE_INVALID),
    (b"\x80\x02garbage", Malformed.PICKLE_INVALID),
    (pickle.dumps([("a", (1, 2))], 2)[:-3], Malformed.PICKLE_INVALID),  # truncated
    (pickle.dumps({"a": (1, 2)}, 2), Malformed.PICKLE_SHAPE),
    (pickle.dumps("a string", 2), Malformed.PICKLE_SHAPE),
    (pickle.dumps(42, 2), Malformed.PICKLE_SHAPE),
]


@pytest.mark.parametrize(("payload", "reason"), INVALID_PAYLOADS)
def test_invalid_pickles_are_refused(payload, reason, tmp_path):
    items, _, refused = pickle_items(payload)
    assert items == [] and refused == reason


def test_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Worse:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    with pytest.raises(UnsafePickle):
        loads(pickle.dumps(Worse(), 2))
    assert not marker.exists()


def test_wrongly_shaped_elements_are_counted_and_good_ones_kept():
    data = [("ok", (1, 2)), ("bad",), ("worse", 1), 7, ("ok2", (3, 4)), ("x", (1, 2, 3))]
    items, bad, refused = pickle_items(pickle.dumps(data, 2))
    assert [i[0] for i in items] == ["ok", "ok2"] and bad == 4 and refused is None


def test_frame_splitter_reassembles_frames_split_anywhere():
    stream = frame([("a", (1, 2))]) + frame([("b", (3, 4))])
    for cut in range(len(stream) + 1):
        sp = FrameSplitter(1 << 20)
        frames = list(sp.feed(stream[:cut])) + list(sp.feed(stream[cut:]))
        assert [pickle.loads(f) for f in frames] == [[("a", (1, 2))], [("b", (3, 4))]]


def test_oversized_length_prefix_is_refused_before_reading():
    sp = FrameSplitter(1024)
    with pytest.raises(FrameTooLarge):
        list(sp.feed(struct.pack("!L", 2**31) + b"x"))


# --- UDP datagrams ------------------------------------------------------------------------
def test_udp_msgpack_and_lines():
    assert datagram_items(msgpack.packb(["a.b", [1700000000, 2.5]]), 100)[0] == [
        ("a.b", 1700000000, 2.5)
    ]
    items, bad, _ = datagram_items(b"a 1 2\nbroken\nb 3 4", 100)
    assert items == [("a", b"2", b"1"), ("b", b"4", b"3")] and bad == 1


INVALID_DATAGRAMS = [
    msgpack.packb(["a", [1]]),
    msgpack.packb(["a", 1, 2]),
    msgpack.packb([1, 2]),
    b"\x92\xc1",
    b"\x92",
]


@pytest.mark.parametrize("data", INVALID_DATAGRAMS)
def test_invalid_msgpack_datagrams(data):
    items, bad, refused = datagram_items(data, 100)
    assert items == [] and (refused == Malformed.DATAGRAM_INVALID or bad)


# --- arbitrary bytes never raise ----------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_bytes_never_raise(chunks):
    lines = LineSplitter(64)
    frames = FrameSplitter(4096)
    for chunk in chunks:
        for line in lines.feed(chunk)[0]:
            parse_line(line)
        datagram_items(chunk, 64)
        pickle_items(chunk)
        try:
            for f in frames.feed(chunk):
                pickle_items(f)
        except FrameTooLarge:
            frames = FrameSplitter(4096)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_pickle_opcodes_never_run_code_or_raise(data):
    pickle_items(b"\x80\x02" + data)
    pickle_items(b"\x80\x05" + data)


# --- skip lists ---------------------------------------------------------------------------
SKIP_CASES = [
    ("stats.statsd.bad_lines", True),
    ("stats.statsd", True),
    ("stats.statsdx.y", False),
    ("a.tmp.b", True),
    ("stats.statsd.keep.me", False),
    ("other.metric", False),
]


@pytest.mark.parametrize(("name", "skipped"), SKIP_CASES)
def test_skip_and_do_not_skip(name, skipped):
    f = NameFilter(skip=["stats.statsd", r"re:\.tmp\."], do_not_skip=["stats.statsd.keep"])
    assert f.skipped(name) is skipped


def test_empty_skip_list_skips_nothing():
    assert not NameFilter().skipped("anything")


# --- the fast multi-line parser agrees with the one-line parser ------------------------
def slow_parse_lines(lines):
    items, bad = [], []
    for line in lines:
        parsed = parse_line(line)
        (bad.append((line, parsed)) if isinstance(parsed, Malformed) else items.append(parsed))
    return items, bad


def normalise(result):
    items, bad = result
    as_bytes = [tuple(x.encode() if isinstance(x, str) else x for x in item) for item in items]
    return as_bytes, bad


HAND_PICKED_BLOCKS = [
    [b"a 1 2", b"b 3 4"],
    [b"a 1 2\r", b"b\t3\t4"],
    [b" a 1 2", b"a  1   2 "],
    [b"a 1", b"b 1 2"],
    [b"caf\xc3\xa9 1 2", b"ok 1 2"],
    [b"a\x0b1 2", b"a 1 2\x0c"],
    [b"a 1 2 3"],
]


@pytest.mark.parametrize("lines", HAND_PICKED_BLOCKS)
def test_parse_lines_matches_parse_line_on_hand_picked(lines):
    assert normalise(parse_lines(lines)) == normalise(slow_parse_lines(lines))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40).filter(lambda b: b"\n" not in b),
            st.builds(
                lambda a, b, c, sep: sep.join([a, b, c]),
                st.text("ab.1 \t-", min_size=0, max_size=6).map(str.encode),
                st.text("0123456789.e-", max_size=5).map(str.encode),
                st.text("0123456789", max_size=5).map(str.encode),
                st.sampled_from([b" ", b"\t", b"  ", b" \t"]),
            ),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_parse_lines_matches_parse_line_on_random(lines):
    assert normalise(parse_lines(lines)) == normalise(slow_parse_lines(lines))


# --- memory bounds (issue 15, item 4) ---------------------------------------------------
def _intake():
    import logging

    from skyline.ingest.horizon.buffer import PointBuffer
    from skyline.ingest.horizon.intake import Intake
    from skyline.runtime.daemon import Counters

    counters = Counters()
    buffer = PointBuffer(batch_points=1000, batch_interval=1.0, high=10**6, low=10**5,
                         limit=2 * 10**6, counters=counters)  # fmt: skip
    return Intake(buffer=buffer, counters=counters, name_filter=NameFilter(), max_age=86400,
                  max_future=60, log=logging.getLogger("test"), clock=lambda: 1.7e9)  # fmt: skip


HOSTILE_NAMES = [
    lambda i: f"{i:07d}" + "x" * (1 << 20),  # too long
    lambda i: f"{i:07d}" + "!" * (1 << 20),  # too long and bad characters
    lambda i: f"{i:07d} bad " * 100,  # bad characters, short enough to be remembered
]


@pytest.mark.parametrize("make_name", HOSTILE_NAMES)
def test_unique_rejected_names_do_not_grow_memory(make_name):
    """Counted: what the intake allocated (and the names this file made) still held
    after 40 unique 1 MB names and 6,000 unique 900-character ones.  The first case's
    900-character names are valid: the intake's verdict cache keeps them (about 6.3 MB
    of the 8 MB allowed), as it keeps every valid name up to ``NAME_CACHE_LIMIT``."""
    from tests.memory import kept

    intake = _intake()

    def rejects() -> None:
        for i in range(40):
            intake.items([(make_name(i), 1.7e9, 1.0)])
        for i in range(6000):  # more short rejects than the reject cache keeps
            intake.items([(make_name(i)[:900], 1.7e9, 1.0)])

    grown, where = kept(rejects, "*/skyline/ingest/horizon/*", __file__)
    assert grown < 8 * (1 << 20), f"intake kept {grown} bytes for rejected names:\n{where}"
    assert intake.items([("good.name", 1.7e9, 1.0)]) == 1
