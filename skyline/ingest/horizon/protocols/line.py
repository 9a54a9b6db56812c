"""Graphite plaintext protocol over TCP: ``<name> <value> <timestamp>`` lines.

Lines longer than ``[horizon] max_line_length`` are dropped and counted, and the
connection kept.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from skyline.ingest.horizon.parsing import Item, Malformed
from skyline.ingest.horizon.protocols import ProtocolSpec, TcpProtocol, register

if TYPE_CHECKING:
    from skyline.ingest.horizon.listeners import Listeners


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


class LineProtocol(TcpProtocol):
    def __init__(self, hub: Listeners) -> None:
        super().__init__(hub)
        self.splitter = LineSplitter(hub.config.max_line_length)

    def data_received(self, data: bytes) -> None:
        lines, too_long = self.splitter.feed(data)
        intake = self.hub.intake
        if too_long:
            intake.malformed_input(Malformed.LINE_TOO_LONG, data[:120], too_long)
        items, bad = parse_lines(lines)
        for line, reason in bad:
            intake.malformed_input(reason, line)
        if items:
            intake.items(items)


register(ProtocolSpec(
    "line", "line_port", 2023, "Graphite plaintext protocol, TCP.", "tcp", LineProtocol
))  # fmt: skip
