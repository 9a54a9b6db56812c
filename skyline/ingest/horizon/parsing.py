"""Wire formats: Graphite plaintext lines, pickle frames, UDP datagrams.

Parsers never raise on bad input: they return items ``(name, timestamp, value)`` with
raw, unvalidated values (validation is ``skyline.ingest.horizon.intake``), and a reject
reason for input that cannot even be split into items.
"""

from __future__ import annotations

import pickle
import re
import struct
from collections.abc import Iterator
from enum import StrEnum

import msgpack

from skyline.ingest.horizon.unpickler import UnsafePickle, loads

Item = tuple[object, object, object]
FRAME_HEADER = struct.Struct("!L")


class Malformed(StrEnum):
    LINE_FIELDS = "line_fields"
    LINE_TOO_LONG = "line_too_long"
    LINE_NOT_ASCII = "line_not_ascii"
    PICKLE_UNSAFE = "pickle_unsafe"
    PICKLE_INVALID = "pickle_invalid"
    PICKLE_SHAPE = "pickle_shape"
    FRAME_TOO_LARGE = "frame_too_large"
    DATAGRAM_INVALID = "datagram_invalid"


def parse_line(line: bytes) -> Item | Malformed:
    """``<name> <value> <timestamp>`` separated by spaces or tabs."""
    fields = line.split()
    if len(fields) != 3:
        return Malformed.LINE_FIELDS
    name, value, ts = fields
    try:
        return name.decode("ascii"), ts, value
    except UnicodeDecodeError:
        return Malformed.LINE_NOT_ASCII


# One well-formed line: exactly three fields separated by single spaces or tabs.
_LINE_RE = re.compile(r"^([^\s]+)[ \t]+([^\s]+)[ \t]+([^\s]+)[ \t\r]*$", re.MULTILINE)


def parse_lines(lines: list[bytes]) -> tuple[list[Item], list[tuple[bytes, Malformed]]]:
    """Parse many lines; returns the items and the malformed lines with reasons.

    The common case (all ASCII, all well-formed) is parsed by one regex pass over the
    joined lines; anything else falls back to ``parse_line`` one line at a time.
    """
    block = b"\n".join(lines)
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        found = _LINE_RE.findall(text)
        if len(found) == len(lines):
            return [(name, ts, value) for name, value, ts in found], []
    items: list[Item] = []
    bad: list[tuple[bytes, Malformed]] = []
    for line in lines:
        parsed = parse_line(line)
        if isinstance(parsed, Malformed):
            bad.append((line, parsed))
        else:
            items.append(parsed)
    return items, bad


class LineSplitter:
    """Splits a TCP byte stream into lines, refusing lines longer than a limit."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length
        self._partial = b""
        self._discarding = False  # inside an over-long line: drop up to its newline

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Complete lines in ``data`` and the number of over-long lines dropped."""
        buf = self._partial + data if self._partial else data
        lines = buf.split(b"\n")
        self._partial = lines.pop()
        too_long = 0
        if self._discarding and lines:
            lines.pop(0)
            self._discarding = False
        if len(self._partial) > self.max_length:
            self._partial = b""
            if not self._discarding:
                too_long += 1
            self._discarding = True
        kept = []
        for line in lines:
            if len(line) > self.max_length:
                too_long += 1
            elif line.strip():
                kept.append(line)
        return kept, too_long


def pickle_items(payload: bytes) -> tuple[list[Item], int, Malformed | None]:
    """Items of one carbon pickle frame, how many elements had the wrong shape, and
    a reason when the whole frame was refused."""
    try:
        data = loads(payload)
    except UnsafePickle:
        return [], 0, Malformed.PICKLE_UNSAFE
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            KeyError, AttributeError, OverflowError, MemoryError, RecursionError,
            UnicodeDecodeError, struct.error):  # fmt: skip
        return [], 0, Malformed.PICKLE_INVALID
    if not isinstance(data, list | tuple):
        return [], 0, Malformed.PICKLE_SHAPE
    items: list[Item] = []
    bad = 0
    for element in data:
        try:
            name, (ts, value) = element
        except (TypeError, ValueError):
            bad += 1
            continue
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        items.append((name, ts, value))
    return items, bad, None


class FrameSplitter:
    """Splits a TCP byte stream into length-prefixed pickle frames."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Complete frames; raises FrameTooLarge for a length prefix over the cap."""
        self._buf += data
        while len(self._buf) >= FRAME_HEADER.size:
            (length,) = FRAME_HEADER.unpack_from(self._buf)
            if length > self.max_frame:
                raise FrameTooLarge(length)
            end = FRAME_HEADER.size + length
            if len(self._buf) < end:
                return
            frame = bytes(self._buf[FRAME_HEADER.size : end])
            del self._buf[:end]
            yield frame

    @property
    def pending(self) -> int:
        return len(self._buf)


class FrameTooLarge(ValueError):
    def __init__(self, length: int) -> None:
        super().__init__(f"pickle frame of {length} bytes announced")
        self.length = length


def datagram_items(data: bytes, max_line_length: int) -> tuple[list[Item], int, Malformed | None]:
    """A UDP datagram: one msgpack ``[name, [ts, value]]`` or plaintext lines."""
    if data[:1] and data[0] in (0x92, 0xDC, 0xDD):  # msgpack fixarray of 2 / array16/32
        try:
            name, (ts, value) = msgpack.unpackb(data, raw=False, strict_map_key=True)
            return [(name, ts, value)], 0, None
        except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError):
            return [], 0, Malformed.DATAGRAM_INVALID
    items: list[Item] = []
    bad = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        parsed = parse_line(line) if len(line) <= max_line_length else Malformed.LINE_TOO_LONG
        if isinstance(parsed, Malformed):
            bad += 1
        else:
            items.append(parsed)
    return items, bad, None
