"""Which [[alerts]] rules a metric matches, with Skyline's pattern meanings.

A pattern matches a metric name when any of these holds, tried in this order:
exact name; substring; every dotted element of the pattern is an element of the
name (``web.requests`` matches ``host1.web.api.requests``); regular expression
(``re.search``), when the pattern compiles as one.

A rule with ``labels`` (a label selector, skyline.settings.selector) matches only a
metric whose label set it also matches: the set the event carries (looked up in the
label index when the anomaly was detected), else what the name shows
(``skyline.store.labels.parsed_labels``; a plain dotted name is only
``{__name__="<name>"}``).

Precedence: rules are read in file order.  For each channel the *first* rule that
matches decides that channel's expiration, so put specific rules before general
ones; a metric alerts on every channel that has a matching rule.  Mirage hours are
taken from the first matching rule that has them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from skyline.settings import AlertRule
from skyline.settings.regexes import RegexError, check_cost, compile_regex
from skyline.settings.selector import Selector, parse
from skyline.store.labels import parsed_labels


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str] | None:
    """The pattern as a regex, None when it does not compile as one (``re.error``, and
    the ``OverflowError`` or ``RecursionError`` a huge count or deep nesting raises)."""
    try:
        return compile_regex(pattern)
    except RegexError:
        return None


@lru_cache(maxsize=1024)
def regex_cost_error(pattern: str) -> str | None:
    """Why ``re`` could take too long matching ``pattern`` as a regex (None when it is
    not one, or is cheap): patterns from outside the settings (mutes) are refused so."""
    if _regex(pattern) is None:
        return None
    try:
        check_cost(pattern)
    except RegexError as exc:
        return f"as a regex it could take too long to match: {exc}"
    return None


def matches(pattern: str, metric: str, *, as_regex: bool = True) -> bool:
    """Whether ``pattern`` matches ``metric`` (the module's docstring); with ``as_regex``
    False, by text and dotted elements only."""
    if pattern == metric or pattern in metric:
        return True
    elements = set(metric.split("."))
    if all(part in elements for part in pattern.split(".")):
        return True
    if not as_regex:
        return False
    regex = _regex(pattern)
    return bool(regex and regex.search(metric))


@lru_cache(maxsize=1024)
def selector(text: str) -> Selector | None:
    """A rule's ``labels`` parsed (validated when the settings loaded); None when empty."""
    return parse(text) if text.strip() else None


def labels_match(text: str, metric: str, labels: Mapping[str, str] | None) -> bool:
    """Whether a rule's ``labels`` selector (``text``) matches the metric's label set."""
    sel = selector(text)
    if sel is None:
        return True
    return sel.matches(labels if labels else parsed_labels(metric))


@dataclass(frozen=True)
class Route:
    """The channels an anomaly of one metric alerts on, and its mirage window."""

    channels: tuple[tuple[str, int, str], ...]  # (channel, expiration s, rule pattern)
    mirage_hours: int | None
    mirage_resolution: int | None = None  # s; None: [mirage] rollup_resolution

    @property
    def alerting(self) -> bool:
        return bool(self.channels)


def route(
    rules: Sequence[AlertRule], metric: str, labels: Mapping[str, str] | None = None
) -> Route:
    channels: dict[str, tuple[str, int, str]] = {}
    mirage_hours = mirage_resolution = None
    for rule in rules:
        if not matches(rule.pattern, metric) or not labels_match(rule.labels, metric, labels):
            continue
        channels.setdefault(rule.channel, (rule.channel, rule.expiration, rule.pattern))
        if mirage_hours is None and rule.mirage_hours:
            mirage_hours, mirage_resolution = rule.mirage_hours, rule.mirage_resolution
    return Route(tuple(channels.values()), mirage_hours, mirage_resolution)
