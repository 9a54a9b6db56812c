"""Which [[boundary]] rules apply to a metric, and where a boundary alert goes.

Matching: a rule applies to a metric when its ``pattern`` matches the name with
Skyline's meanings (``skyline.events.rules.matches``: exact, substring, dotted
elements, regex), its ``labels`` selector (if any) matches the metric's label set
(``skyline.events.rules.labels_match``) and none of its ``excludes`` matches.

Precedence (Skyline's "more specific later tuples override earlier broad ones"):
for each metric and *algorithm*, the LAST applicable rule in file order is the one
used — put broad rules first and specific ones after them.  Rules of different
algorithms all apply to the metric.  (This is the opposite of ``[[alerts]]``, where
the first matching rule decides a channel's expiration, because that is what each
table means in Skyline.)

A boundary alert's channels are those of the metric's effective rule of each
algorithm in ``event.triggered``, each with that rule's expiry as the dedupe
expiration; its dedupe key includes the algorithm(s) (``skyline.alerting.dedupe``).

Here, below both, because the boundary daemon and the alerters both read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from skyline.events.anomaly import AnomalyEvent
from skyline.events.rules import Route, labels_match, matches
from skyline.settings import BoundaryRule, Settings


@dataclass(frozen=True)
class Applied:
    """A rule as it applies to one metric: its position in the file (the breach
    counter's key) and the rule."""

    index: int
    rule: BoundaryRule


def applies(rule: BoundaryRule, metric: str, labels: Mapping[str, str] | None = None) -> bool:
    return (
        matches(rule.pattern, metric)
        and labels_match(rule.labels, metric, labels)
        and not any(matches(p, metric) for p in rule.excludes)
    )


def effective_rules(
    rules: Sequence[BoundaryRule], metric: str, labels: Mapping[str, str] | None = None
) -> list[Applied]:
    """The rules that judge ``metric``: per algorithm, the last applicable one."""
    chosen: dict[str, Applied] = {}
    for index, rule in enumerate(rules):
        if applies(rule, metric, labels):
            chosen[rule.algorithm] = Applied(index, rule)
    return sorted(chosen.values(), key=lambda a: a.index)


def boundary_route(settings: Settings, event: AnomalyEvent) -> Route:
    """The channels of a boundary anomaly: the effective rules of the algorithms that
    triggered.  A channel named by two of them keeps the first (by file order)."""
    channels: dict[str, tuple[str, int, str]] = {}
    for applied in effective_rules(settings.boundary, event.metric, event.labels):
        rule = applied.rule
        if rule.algorithm not in event.triggered:
            continue
        for channel in rule.channels:
            channels.setdefault(channel, (channel, rule.expiry, rule.pattern))
    return Route(tuple(channels.values()), None)
