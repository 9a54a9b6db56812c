"""UDP datagrams: one msgpack ``[name, [ts, value]]`` or plaintext lines each."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgpack

from skyline.ingest.horizon.parsing import Item, Malformed
from skyline.ingest.horizon.protocols import ProtocolSpec, register
from skyline.ingest.horizon.protocols.line import parse_line

if TYPE_CHECKING:
    from skyline.ingest.horizon.listeners import Listeners


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


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, hub: Listeners) -> None:
        self.hub = hub

    def datagram_received(self, data: bytes, addr: object) -> None:
        intake = self.hub.intake
        items, bad, refused = datagram_items(data, self.hub.config.max_line_length)
        if refused:
            intake.malformed_input(refused, data)
        if bad:
            intake.malformed_input(Malformed.LINE_FIELDS, data, bad)
        if items:
            intake.items(items)
        if self.hub.intake.buffer.paused:
            intake.counters.inc("udp_received_while_paused", len(items))


register(ProtocolSpec(
    "udp", "udp_port", 2025, "UDP: msgpack [name, [ts, value]] or plaintext lines.", "udp",
    UdpProtocol,
))  # fmt: skip
