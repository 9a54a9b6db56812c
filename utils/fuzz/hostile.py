"""Hypothesis strategies for hostile input, one per protocol.

Each strategy draws one hostile input: a mixture of structure-aware cases (a
well-formed message with one field made hostile: a 400-digit number, a NaN, a name of
a megabyte, a Unicode digit, a NUL) and unstructured ones (random bytes, truncated or
oversized frames, decompression bombs).  Hypothesis's own size limits keep drawn
values small, so the big cases are built by repetition (``big``).
"""

from __future__ import annotations

import gzip
import json
import pickle
import struct

import cramjam
import msgpack
from hypothesis import strategies as st

from skyline.ingest.flux.prometheus import WriteRequest

# Numbers that are not what they seem: overflow float(), SQLite or int-string limits,
# or are digits only to str.isdigit().
ODD_NUMBERS = ["1" + "0" * 400, "-1" + "0" * 400, "1e400", "-1e400", "1e308", "1e-400", "nan",
               "NaN", "inf", "-inf", "Infinity", "²", "٣", "1²", "0x10", "1_000", "+5", " 7",
               "9" * 20, "9" * 5000, "1" * 400 + "h", "", " ", "-", ".", "1.2.3", "1e", "\x00",
               "4294967296", "-1", "0", "18446744073709551616", "1e154", "1.7976931348623157e308"]  # fmt: skip

numbers_text = st.one_of(
    st.sampled_from(ODD_NUMBERS),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789.-+eE", max_size=30),
)
small_text = st.text(max_size=40)


@st.composite
def big(draw: st.DrawFn, unit: st.SearchStrategy[str] = small_text) -> str:
    """A string of up to ~1 MB, built by repeating a small drawn one."""
    piece = draw(unit) or "x"
    return piece * draw(st.sampled_from([1, 10, 1000, 100_000 // len(piece) + 1,
                                         1_000_000 // len(piece) + 1]))  # fmt: skip


names = st.one_of(
    small_text,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz._-/=:%+", min_size=1, max_size=30),
    st.sampled_from(["", ".", "..", "a..b", "/", "a b", "a\nb", "\x00", "é", "a" * 1025]),
)
hostile_names = st.one_of(names, st.integers(0, 50).flatmap(lambda n: big() if n == 0 else names))
timestamps_text = st.one_of(numbers_text, st.integers(-(2**70), 2**70).map(str))
raw_bytes = st.binary(max_size=300)


# -- Graphite plaintext (TCP line and UDP) -------------------------------------------


@st.composite
def line(draw: st.DrawFn) -> bytes:
    """One newline-terminated hostile line (the next line on the connection is good)."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        body = draw(raw_bytes).replace(b"\n", b" ")
    elif kind == 1:  # a line far over max_line_length
        body = draw(big(st.text(alphabet="ab .9", min_size=1, max_size=5))).encode()
    else:
        parts = [draw(hostile_names), draw(numbers_text), draw(timestamps_text)]
        parts += draw(st.lists(small_text, max_size=2))
        sep = draw(st.sampled_from([" ", "  ", "\t", " \r"]))
        body = sep.join(parts[: draw(st.integers(0, len(parts)))]).encode(errors="surrogatepass")
        body = body.replace(b"\n", b" ")
    return body + b"\n"


@st.composite
def udp(draw: st.DrawFn) -> bytes:
    """One hostile datagram: plaintext lines or msgpack."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(raw_bytes) or b"\x92"
    if kind == 1:
        value = draw(st.one_of(st.integers(-(2**63), 2**64 - 1), st.floats(), small_text,
                               st.none(), st.binary(max_size=20)))  # fmt: skip
        ts = draw(st.one_of(st.integers(-(2**63), 2**64 - 1), st.floats(), small_text))
        shape = draw(st.sampled_from([[None, [ts, value]], [None, ts], [None, [ts]], [None]]))
        shape[0] = draw(hostile_names)[:60000]
        return msgpack.packb(shape, use_bin_type=True)
    return draw(line())[:65000]


# -- Graphite pickle ----------------------------------------------------------------


class _Evil:
    """Unpickling this would call os.system: horizon's unpickler must refuse it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


pickle_values = st.one_of(
    st.integers(-(10**400), 10**400), st.floats(), numbers_text, st.none(), st.booleans(),
    st.binary(max_size=10), st.just(10**400), st.just(-(10**400)),
)  # fmt: skip


@st.composite
def pickle_frame(draw: st.DrawFn) -> bytes:
    """One length-prefixed frame whose payload is hostile but whose framing is right."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        payload = draw(raw_bytes)
    elif kind == 1:
        payload = pickle.dumps(_Evil(), protocol=draw(st.integers(0, 5)))
    elif kind == 2:  # a nested list far deeper than any real batch
        payload = b"(" * draw(st.integers(1, 100_000)) + b"."
    else:
        item = draw(st.one_of(
            st.tuples(hostile_names, st.tuples(pickle_values, pickle_values)),
            st.tuples(hostile_names, pickle_values),
            st.lists(pickle_values, max_size=3),
            pickle_values,
        ))  # fmt: skip
        batch = draw(st.lists(st.just(item), min_size=1, max_size=3))
        proto = draw(st.integers(0, 5))
        try:
            payload = pickle.dumps(batch, protocol=proto)
        except (ValueError, OverflowError):
            payload = pickle.dumps([("x", (1, 1))], protocol=proto)
        if draw(st.integers(0, 9)) == 0:
            payload = payload[: draw(st.integers(0, len(payload)))]  # truncated
    return struct.pack("!L", len(payload)) + payload


@st.composite
def pickle_framing(draw: st.DrawFn) -> bytes:
    """Bytes whose framing itself is broken: sent on a connection of their own."""
    kind = draw(st.integers(0, 2))
    if kind == 0:  # a length prefix far over max_pickle_frame
        return struct.pack("!L", draw(st.integers(2**21, 2**32 - 1))) + b"x" * 100
    if kind == 1:  # a prefix promising more than is sent, then the connection closes
        return struct.pack("!L", draw(st.integers(100, 2**20))) + draw(raw_bytes)
    return draw(raw_bytes)


# -- flux JSON ------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), small_text),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(small_text, children, max_size=4)),
    max_leaves=12,
)  # fmt: skip


def _raw_number(text: str) -> str:
    """A JSON literal: the number itself when it is one, else the quoted string."""
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(text)


@st.composite
def flux_json_item(draw: st.DrawFn) -> str:
    """One hostile entry of a metric_data_post ``metrics`` array, as raw JSON text."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return json.dumps(draw(json_values))
    fields = {
        "metric": json.dumps(draw(hostile_names)),
        "timestamp": _raw_number(draw(timestamps_text)),
        "value": _raw_number(draw(numbers_text)),
    }
    if kind == 1:  # one field of any JSON type
        field = draw(st.sampled_from(sorted(fields)))
        fields[field] = json.dumps(draw(json_values))
    keep = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, min_size=1))
    return "{" + ",".join(f'"{k}":{fields[k]}' for k in keep) + "}"


@st.composite
def flux_json_body(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A whole hostile request body and its headers; a ``%GOOD%`` marks where a good
    item may be spliced into the metrics array."""
    kind = draw(st.integers(0, 4))
    headers = {"Content-Type": "application/json"}
    if kind == 0:
        body = draw(raw_bytes)
    elif kind == 1:
        body = ("[" * draw(st.integers(1, 200_000))).encode()  # deep nesting
    elif kind == 2:
        body = json.dumps(draw(json_values)).encode()
    else:
        items = draw(st.lists(flux_json_item(), min_size=1, max_size=3))
        body = ('{"metrics":[' + ",".join([*items, "%GOOD%"]) + "]}").encode(errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    return body, headers


# -- Influx line protocol --------------------------------------------------------------


@st.composite
def influx_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(raw_bytes).replace(b"\n", b" ")
    if kind == 1:
        return draw(big(st.text(alphabet="a=, 1", min_size=1, max_size=5))).encode()
    meas = draw(hostile_names)[:3000]
    tags = ",".join(
        f"{draw(small_text)}={draw(small_text)}" for _ in range(draw(st.integers(0, 2)))
    )
    fields = ",".join(f"{draw(small_text)}={draw(numbers_text)}{draw(st.sampled_from(['', 'i', 'u']))}"
                      for _ in range(draw(st.integers(0, 3))))  # fmt: skip
    ts = draw(st.one_of(st.just(""), timestamps_text))
    text = f"{meas}{',' if tags else ''}{tags} {fields} {ts}".replace("\n", " ")
    return text.encode(errors="surrogatepass")


@st.composite
def influx_body(draw: st.DrawFn) -> tuple[bytes, dict[str, str], str]:
    """Lines, headers and the precision query value; the good line is appended."""
    body = b"\n".join(draw(st.lists(influx_line(), min_size=1, max_size=3)))
    headers = {"Content-Type": "text/plain"}
    precision = draw(st.sampled_from(["s", "s", "ms", "ns", "x", "", "h"]))
    return body, headers, precision


def gzip_bomb(size: int = 60_000_000) -> bytes:
    """One line that inflates to ``size`` bytes from a ~60 KB body."""
    return gzip.compress(b"a" * size, compresslevel=9)


# -- Prometheus remote_write ------------------------------------------------------------


@st.composite
def remote_write_series(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple[float, int]]]:
    labels = draw(st.lists(st.tuples(st.one_of(st.just("__name__"), names),
                                     st.one_of(names, st.just(""))), max_size=4))  # fmt: skip
    samples = draw(st.lists(st.tuples(st.floats(), st.integers(-(2**63), 2**63 - 1)), max_size=3))
    return labels, samples


def write_request(series: list[tuple[list[tuple[str, str]], list[tuple[float, int]]]]) -> bytes:
    req = WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for name, value in labels:
            label = ts.labels.add()
            label.name, label.value = name, value
        for value, stamp in samples:
            sample = ts.samples.add()
            sample.value, sample.timestamp = value, stamp
    return req.SerializeToString()


@st.composite
def remote_write_body(draw: st.DrawFn) -> tuple[bytes | None, list]:
    """Either a finished hostile body (bytes, []) or (None, series) into which the good
    series is added before encoding."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(raw_bytes), []
    if kind == 1:
        return bytes(cramjam.snappy.compress_raw(draw(raw_bytes))), []
    if kind == 2:  # a snappy header claiming far more than max_decompressed_bytes
        return b"\xff\xff\xff\xff\x0f" + draw(raw_bytes), []
    return None, draw(st.lists(remote_write_series(), min_size=1, max_size=3))


# -- StatsD -------------------------------------------------------------------------------


@st.composite
def statsd(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(raw_bytes) or b":"
    if kind == 1:  # the timer overflow of issue 15 item 3
        return f"fz.t:{draw(st.sampled_from(['1e154', '1e200', '-1e154', '1e308']))}|ms".encode()
    name = draw(hostile_names)[:2000]
    value = draw(numbers_text)
    typ = draw(st.sampled_from(["c", "ms", "g", "s", "h", "x", "", "c|@0", "c|@-1", "c|@nan",
                                "ms|@0.5", "g|@1e400"]))  # fmt: skip
    return f"{name}:{value}|{typ}".replace("\n", " ").encode(errors="surrogatepass")


# -- webapp parameters --------------------------------------------------------------------

param_values = st.one_of(numbers_text, names, st.sampled_from(["'", '"', "<script>", "%", "../..",
                                                                "\x00", "a" * 5000]))  # fmt: skip
