"""Plain (human) output of the ``skyline`` command: tables with a header, ISO times with
their zone, rounded numbers.  ``--json`` output never goes through here: it stays exact.

A closed pipe (``skyline status | head``) is handled once, in :func:`closed_pipe_safe`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
from collections.abc import Callable, Sequence

# 128 + SIGPIPE: what a shell reports for a command killed by a closed pipe.
EXIT_CLOSED_PIPE = 141


def iso(ts: float | int | None, tz: dt.tzinfo | None = None) -> str:
    """``2026-12-06T01:57:03+00:00``: seconds, with the zone (the machine's by default)."""
    if ts is None:
        return "-"
    when = dt.datetime.fromtimestamp(float(ts), dt.UTC)
    return when.astimezone(tz).isoformat(timespec="seconds")


def num(value: float | int | None, digits: int = 4) -> str:
    """A number rounded to ``digits`` significant digits; integers as they are."""
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.{digits}g}"


def seconds(value: float | None) -> str:
    """An age or a duration: ``0.3s``, ``12s``, ``4m05s``, ``2h10m``."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}s"
    s = round(value)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns under an upper-case header; the last column is not padded."""
    cells = [[str(h).upper() for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers) - 1)]
    lines = []
    for r in cells:
        padded = [c.ljust(w) for c, w in zip(r, widths, strict=False)] + r[len(widths) :]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def closed_pipe_safe(run: Callable[[], int]) -> int:
    """Run a command; if the reader of stdout went away (``| head``), stop quietly with
    ``EXIT_CLOSED_PIPE`` instead of a BrokenPipeError traceback."""
    try:
        code = run()
        sys.stdout.flush()  # inside the try: buffered output fails here, not at exit
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_CLOSED_PIPE
