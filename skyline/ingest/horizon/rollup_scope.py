"""Which metrics horizon keeps rollups of (``[mirage] rollups``).

The scope follows the [[alerts]] rules (those with ``mirage_hours``), so it lives
with the daemon that maintains the rollups, above the store and the rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from skyline.events.rules import route
from skyline.settings import Settings


class RollupScope:
    """Which metrics get rollups (``[mirage] rollups``): ``on`` every metric, ``off``
    none, ``auto`` those an [[alerts]] rule with ``mirage_hours`` matches, unless
    mirage reads a remote history.  The per-name decision is cached."""

    def __init__(self, settings: Settings) -> None:
        cfg = settings.mirage
        remote = bool(cfg.graphite_url or cfg.prometheus_url)
        mirage_rules = any(rule.mirage_hours for rule in settings.alerts)
        self.rules = settings.alerts
        self.every = cfg.rollups == "on"
        self.some = cfg.rollups == "auto" and mirage_rules and not remote
        self._cache: dict[str, bool] = {}

    @property
    def enabled(self) -> bool:
        return self.every or self.some

    def select(self, metrics: Sequence[str]) -> list[str]:
        """The ``metrics`` that get rollups; the cache keeps only these names."""
        if self.every or not self.some:
            return list(metrics) if self.every else []
        old, cache = self._cache, {}
        for m in metrics:
            hit = old.get(m)
            cache[m] = bool(route(self.rules, m).mirage_hours) if hit is None else hit
        self._cache = cache
        return [m for m in metrics if cache[m]]
