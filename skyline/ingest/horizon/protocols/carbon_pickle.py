"""Graphite pickle protocol over TCP (carbon-relay): length-prefixed pickle frames.

Frames are unpickled by the restricted unpickler (``skyline.ingest.horizon.unpickler``).
A frame whose length prefix is over ``[horizon] max_pickle_frame`` closes the
connection: the stream cannot be resynchronised.
"""

from __future__ import annotations

import logging
import pickle
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from skyline.ingest.horizon.parsing import Item, Malformed
from skyline.ingest.horizon.protocols import ProtocolSpec, TcpProtocol, register
from skyline.ingest.horizon.unpickler import UnsafePickle, loads
from skyline.store.datapoint import printable

if TYPE_CHECKING:
    from skyline.ingest.horizon.listeners import Listeners

log = logging.getLogger("skyline.horizon")
FRAME_HEADER = struct.Struct("!L")
# Longest number sent as text that is parsed: a finite double in plain notation takes at
# most about 330 characters.  A frame can name one long string many times (memo
# references), and float() of 400 KB costs about a millisecond a reference.
MAX_NUMBER_TEXT = 400


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
        if type(value) in _TEXT or type(ts) in _TEXT:
            ts, value = _short(ts), _short(value)
        items.append((name, ts, value))
    return items, bad, None


_TEXT = frozenset((str, bytes))


def _short(number: object) -> object:
    """``number``, or None (not numeric: rejected by the intake) for text too long."""
    if type(number) in _TEXT and len(number) > MAX_NUMBER_TEXT:  # type: ignore[arg-type]
        return None
    return number


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


class PickleProtocol(TcpProtocol):
    def __init__(self, hub: Listeners) -> None:
        super().__init__(hub)
        self.splitter = FrameSplitter(hub.config.max_pickle_frame)

    def data_received(self, data: bytes) -> None:
        intake = self.hub.intake
        try:
            for frame in self.splitter.feed(data):
                intake.counters.inc("pickle_frames")
                items, bad, refused = pickle_items(frame)
                if refused is Malformed.PICKLE_UNSAFE:  # rate-limited like every reject
                    intake.malformed_input(
                        refused, f"from {self._peer()}: {frame[:60]!r}", level=logging.WARNING
                    )
                elif refused:
                    intake.malformed_input(refused, frame)
                if bad:
                    intake.malformed_input(Malformed.PICKLE_SHAPE, frame, bad)
                if items:
                    intake.items(items)
        except FrameTooLarge as exc:
            intake.malformed_input(Malformed.FRAME_TOO_LARGE, data[:16])
            log.warning("closing %s: %s (cap %d)", self._peer(), exc, self.splitter.max_frame)
            if self.transport is not None:
                self.transport.abort()

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return printable(peer)


register(ProtocolSpec(
    "pickle", "pickle_port", 2024, "Graphite pickle protocol (carbon-relay), TCP.", "tcp",
    PickleProtocol,
))  # fmt: skip
