"""Muting: no alerts for metrics matching a pattern until a time (``alert_mutes``).

``skyline alerts mute PATTERN --for 2h``; patterns match as in [[alerts]] rules,
except that a pattern which, as a regex, ``re`` could take too long to match
(``skyline.settings.regexes``) is refused (``check_pattern``): every alert is matched
against every mute.  One stored before that check still mutes what it matches as text
and by dotted elements, not as a regex (logged once).
The alerters re-read the active mutes at most once a second, so a mute takes
effect at once.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, select
from sqlalchemy.orm import Session

from skyline.db.models import AlertMute
from skyline.events.rules import matches, regex_cost_error

log = logging.getLogger("skyline.alerters")
MAX_PATTERN = 1024

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


MAX_MUTE = 10 * 366 * 86400


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1w`` or plain seconds, at most MAX_MUTE.

    ASCII digits only, and few of them: a 20-digit duration would overflow the
    database's integer (a 500, issue 15 item 5)."""
    m = re.fullmatch(r"\s*([0-9]{1,12})\s*([smhdw]?)\s*", text[:100])
    seconds = int(m.group(1)) * _UNITS[m.group(2) or "s"] if m else 0
    if not 0 < seconds <= MAX_MUTE:
        raise ValueError(
            f"{text[:40]!r} is not a duration such as 90s, 30m, 2h or 1d (at most 10 years)"
        )
    return seconds


def check_pattern(pattern: str) -> None:
    """``ValueError`` saying why ``pattern`` cannot be a mute's."""
    if not pattern or len(pattern) > MAX_PATTERN:
        raise ValueError(f"a metric name or pattern, 1 to {MAX_PATTERN} characters")
    why = regex_cost_error(pattern)
    if why:
        raise ValueError(why)


def mute(engine: Engine, pattern: str, seconds: int, reason: str | None = None,
         user_id: int | None = None) -> int:  # fmt: skip
    """Mute ``pattern`` for ``seconds`` (``check_pattern`` must pass); returns the epoch
    second it ends."""
    check_pattern(pattern)
    until = int(time.time()) + seconds
    with Session(engine) as db:
        db.add(AlertMute(pattern=pattern, until=until, reason=reason, created_by=user_id))
        db.commit()
    return until


def unmute(engine: Engine, pattern: str) -> int:
    with Session(engine) as db:
        n = cast(
            CursorResult[Any], db.execute(delete(AlertMute).where(AlertMute.pattern == pattern))
        ).rowcount
        db.commit()
    return n


def active(engine: Engine, now: float | None = None) -> list[AlertMute]:
    now = time.time() if now is None else now
    with Session(engine) as db:
        rows = db.scalars(select(AlertMute).where(AlertMute.until > now).order_by(AlertMute.until))
        return list(rows)


class Mutes:
    def __init__(self, engine: Engine, refresh: float = 1.0) -> None:
        self.engine, self.refresh = engine, refresh
        self._patterns: list[tuple[str, bool]] = []  # (pattern, matched as a regex too)
        self._read_at = float("-inf")
        self._logged: set[str] = set()  # costly patterns stored before check_pattern

    def muted_by(self, metric: str) -> str | None:
        if time.monotonic() - self._read_at >= self.refresh:
            self._patterns = [(m.pattern, self._as_regex(m.pattern)) for m in active(self.engine)]
            self._read_at = time.monotonic()
        return next((p for p, rx in self._patterns if matches(p, metric, as_regex=rx)), None)

    def _as_regex(self, pattern: str) -> bool:
        why = regex_cost_error(pattern)
        if why and pattern not in self._logged:
            self._logged.add(pattern)
            log.error("mute %r is matched as text only: %s (mute a simpler pattern)",
                      pattern[:80], why)  # fmt: skip
        return why is None
