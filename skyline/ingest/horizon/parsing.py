"""What every wire-format parser returns (each lives with its protocol in
``skyline.ingest.horizon.protocols``).

Parsers never raise on bad input: they return items ``(name, timestamp, value)`` with
raw, unvalidated values (validation is ``skyline.ingest.horizon.intake``), and a reject
reason (``Malformed``) for input that cannot even be split into items.
"""

from __future__ import annotations

from enum import StrEnum

Item = tuple[object, object, object]


class Malformed(StrEnum):
    LINE_FIELDS = "line_fields"
    LINE_TOO_LONG = "line_too_long"
    LINE_NOT_ASCII = "line_not_ascii"
    PICKLE_UNSAFE = "pickle_unsafe"
    PICKLE_INVALID = "pickle_invalid"
    PICKLE_SHAPE = "pickle_shape"
    FRAME_TOO_LARGE = "frame_too_large"
    DATAGRAM_INVALID = "datagram_invalid"
