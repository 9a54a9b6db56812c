"""Validation of one datapoint (name, timestamp, value), shared by every ingest path.

A rejected datapoint gets a ``Reject`` reason; ingest code counts rejects by
reason, logs them with ``printable`` and drops them.  Nothing here raises on bad
input.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from enum import StrEnum

# Graphite/Skyline metric names: letters, digits and + - % . _ / = : (flux's charset).
NAME_RE = re.compile(r"[A-Za-z0-9+\-%._/=:]+")
MAX_NAME_LENGTH = 1024
MAX_TIMESTAMP = 2**32 - 1  # records store uint32 seconds


class Reject(StrEnum):
    NAME_EMPTY = "name_empty"
    NAME_TOO_LONG = "name_too_long"
    NAME_CHARSET = "name_charset"
    VALUE_NOT_NUMERIC = "value_not_numeric"
    VALUE_NOT_FINITE = "value_not_finite"
    TIMESTAMP_NOT_NUMERIC = "timestamp_not_numeric"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"


@dataclass(frozen=True)
class Window:
    """Accepted timestamps: ``now - max_age <= ts <= now + max_future`` (seconds)."""

    max_age: float = 86400.0
    max_future: float = 60.0


def check_name(name: object, max_length: int = MAX_NAME_LENGTH) -> Reject | None:
    if not isinstance(name, str) or not name:
        return Reject.NAME_EMPTY if not name else Reject.NAME_CHARSET
    if len(name) > max_length:
        return Reject.NAME_TOO_LONG
    if not NAME_RE.fullmatch(name):
        return Reject.NAME_CHARSET
    return None


def to_float(value: object) -> float | None:
    """A finite-or-not float from an int, float or numeric string; None if not numeric.

    An int too large for a float is returned as an infinity of its sign."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range (JSON allows 10**400)
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str | bytes):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def check_point(
    name: object, timestamp: object, value: object, now: float, window: Window
) -> tuple[Reject | None, float, float]:
    """Validate one point; return ``(reason or None, timestamp, value)`` as floats."""
    reason = check_name(name)
    if reason:
        return reason, 0.0, 0.0
    v = to_float(value)
    if v is None:
        return Reject.VALUE_NOT_NUMERIC, 0.0, 0.0
    if not math.isfinite(v):
        return Reject.VALUE_NOT_FINITE, 0.0, 0.0
    ts = to_float(timestamp)
    if ts is None or not math.isfinite(ts):
        return Reject.TIMESTAMP_NOT_NUMERIC, 0.0, 0.0
    if ts > now + window.max_future or ts > MAX_TIMESTAMP:
        return Reject.TIMESTAMP_IN_FUTURE, 0.0, 0.0
    if ts < now - window.max_age or ts < 1:
        return Reject.TIMESTAMP_TOO_OLD, 0.0, 0.0
    return None, ts, v


def printable(raw: object, limit: int = 120) -> str:
    """A truncated, escaped rendering of untrusted input, safe for one log line."""
    if isinstance(raw, bytes | bytearray):
        text = repr(bytes(raw[: limit * 2]))[2:-1]
    else:
        text = _text(raw, limit * 2).encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def _text(raw: object, width: int) -> str:
    """About ``width`` characters of ``raw``.  Data (an unpickled or decoded item) is
    rendered by ``_Bounded``: ``str()`` would render it whole, which raises for an int
    past 4300 digits or a list nested 1000 deep, and takes forever for a small pickle
    whose memo references make a list of lists of a long string."""
    if isinstance(raw, str):
        return raw[:width]
    if isinstance(raw, int | float | list | tuple | dict | set | frozenset):
        return _Bounded(width).repr(raw)
    return str(raw)[:width]


class _Bounded(reprlib.Repr):
    """``repr`` at a bounded cost: three levels, six items a level, ``width`` characters
    a string, and no conversion of a long int or bytes whole."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxlong = self.maxother = width

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 3 * self.maxlong:  # more digits than would be shown
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring])

    repr_bytearray = repr_bytes
