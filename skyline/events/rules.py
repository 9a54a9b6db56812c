"""Which [[alerts]] rules a metric matches, with Skyline's pattern meanings.

A pattern matches a metric name when any of these holds, tried in this order:
exact name; substring; every dotted element of the pattern is an element of the
name (``web.requests`` matches ``host1.web.api.requests``); regular expression
(``re.search``), when the pattern compiles as one.

Precedence: rules are read in file order.  For each channel the *first* rule that
matches decides that channel's expiration, so put specific rules before general
ones; a metric alerts on every channel that has a matching rule.  Mirage hours are
taken from the first matching rule that has them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from skyline.settings import AlertRule


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def matches(pattern: str, metric: str) -> bool:
    if pattern == metric or pattern in metric:
        return True
    elements = set(metric.split("."))
    if all(part in elements for part in pattern.split(".")):
        return True
    regex = _regex(pattern)
    return bool(regex and regex.search(metric))


@dataclass(frozen=True)
class Route:
    """The channels an anomaly of one metric alerts on, and its mirage window."""

    channels: tuple[tuple[str, int, str], ...]  # (channel, expiration s, rule pattern)
    mirage_hours: int | None

    @property
    def alerting(self) -> bool:
        return bool(self.channels)


def route(rules: Sequence[AlertRule], metric: str) -> Route:
    channels: dict[str, tuple[str, int, str]] = {}
    mirage_hours = None
    for rule in rules:
        if not matches(rule.pattern, metric):
            continue
        channels.setdefault(rule.channel, (rule.channel, rule.expiration, rule.pattern))
        if mirage_hours is None and rule.mirage_hours:
            mirage_hours = rule.mirage_hours
    return Route(tuple(channels.values()), mirage_hours)
