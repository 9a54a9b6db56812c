"""Skip and do-not-skip lists for metric names (Skyline's SKIP_LIST / DO_NOT_SKIP_LIST).

An entry is either a dotted prefix (``stats.statsd`` matches ``stats.statsd`` and
``stats.statsd.x`` but not ``stats.statsdx``) or ``re:`` followed by a regular
expression searched anywhere in the name.  A name that matches ``do_not_skip`` is
always kept; otherwise one that matches ``skip`` is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class NameFilter:
    """Decides whether a metric name is skipped; remembers recent answers."""

    CACHE_LIMIT = 200_000

    def __init__(self, skip: Sequence[str] = (), do_not_skip: Sequence[str] = ()) -> None:
        self._skip = _compile(skip)
        self._keep = _compile(do_not_skip)
        self._cache: dict[str, bool] = {}

    @property
    def active(self) -> bool:
        return self._skip is not None

    def skipped(self, name: str) -> bool:
        if self._skip is None:
            return False
        hit = self._cache.get(name)
        if hit is None:
            hit = bool(self._skip.search(name)) and not (self._keep and self._keep.search(name))
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[name] = hit
        return hit


def _compile(entries: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation of every entry, so a name is tested with a single search."""
    parts = []
    for entry in entries:
        if entry.startswith("re:"):
            parts.append(f"(?:{entry[3:]})")
        elif entry:
            parts.append(f"(?:^{re.escape(entry)}(?:\\.|$))")
    return re.compile("|".join(parts)) if parts else None
