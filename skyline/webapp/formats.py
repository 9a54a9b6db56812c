"""How the pages show times and numbers: one format everywhere.

A point in time is ISO-like in UTC with the zone, ``2026-12-06 17:39:07 UTC``, in a
``<time>`` element whose ``title`` (the hover) is its age, ``5m ago``; an age shown on
the page has the absolute time as its hover.  ``static/app.js`` draws the same format in
the charts and live lists (and refreshes a hovered age).  Counters are rounded and carry
their unit: ``12.3 ms`` for a duration, ``1,234`` for a count, ``2.5/s`` for a rate.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from markupsafe import Markup

FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def when_text(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime(FORMAT)


def age_text(ts: float, now: float | None = None) -> str:
    s = max(0, int((time.time() if now is None else now) - float(ts)))
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    if s < 172800:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def _time(ts: float, text: str, title: str) -> Markup:
    iso = datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, title, text)


def when(ts: float | None, now: float | None = None) -> Markup | str:
    """The template filter ``when``: the time, its age on hover."""
    if ts is None:
        return "-"
    return _time(ts, when_text(ts), age_text(ts, now))


def ago(ts: float | None, now: float | None = None) -> Markup | str:
    """The template filter ``ago``: the age, the time on hover."""
    if ts is None:
        return "-"
    return _time(ts, age_text(ts, now), when_text(ts))


def duration(seconds: float | None) -> str:
    """A duration in seconds with a unit that keeps it readable: 15 µs, 12.3 ms, 4.56 s."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds == 0:
        return "0 s"
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if abs(seconds) < 1:
        return f"{seconds * 1e3:.3g} ms"
    if abs(seconds) < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"


def count(value: float | None) -> str:
    """A count: thousands separated, at most three significant digits after the point."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == int(value) or abs(value) >= 1000:
        return f"{round(value):,}"
    if abs(value) < 0.001:  # never an exponent on the page
        return "< 0.001" if value > 0 else "> -0.001"
    return f"{value:.3g}"


def rate(value: float | None, seconds: float, unit: str = "") -> str:
    """A count over ``seconds`` as a rate per second: ``2.5 datapoints/s``."""
    if value is None or not math.isfinite(value) or seconds <= 0:
        return "-"
    per_s = value / seconds
    n = f"{round(per_s):,}" if abs(per_s) >= 1000 else f"{per_s:.3g}"
    return f"{n} {unit}/s" if unit else f"{n}/s"


def counter(value: float | None, name: str) -> str:
    """A daemon counter by its name (``{{ value | counter(name) }}``): ``..._time`` and
    ``..._age`` are seconds, the rest counts."""
    if name.endswith(("time", "_age", "_seconds")):
        return duration(value)
    return count(value)
