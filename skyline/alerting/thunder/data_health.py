"""Thunder's data health: metrics, or whole namespaces, that stop arriving.

Every ``[thunder] data_interval`` thunder reads the newest timestamp of every metric
(one GETRANGE per metric, as roomba's first pass does) and sorts each metric into
the first ``[[data_health]]`` rule whose namespace matches it, else into the
catch-all rule ``all`` (``[thunder] stale_after``; off at 0).  Per rule:

- **stale**: metrics with no datapoint for ``stale_after`` seconds.  The ones newly
  stale since the last check are raised as one event of the metric
  ``skyline.thunder.data.<name>.stale`` whose note names them; a metric is raised
  once, and again only after it has come back.  ``stale_after`` is validated to be
  shorter than ``[skyline] metrics_inactive_after``, so the event comes before roomba
  deletes the silent series.
- **count_drop**: the number of metrics still arriving falls below ``min_fraction`` of
  the most seen within ``baseline`` seconds (an exporter that lost most of its
  series, a relay that drops one host).  Raised once per drop, again after recovery.

The events go through the alert pipeline like thunder's DOWN events: panorama
records them and an ``[[alerts]]`` rule matching ``skyline.thunder`` delivers them.
Which metrics are stale is kept in Redis (``thunder:stale``), so a restart does not
raise them again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import redis
from redis.typing import EncodableT, FieldT

from skyline.events.anomaly import AnomalyEvent
from skyline.settings import Settings
from skyline.settings.thunder import DataHealthRule, catch_all_stale_after
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.thunder")

LISTED = 10  # metric names spelled out in one event's note


@dataclass
class RuleState:
    """What one rule found at the last check, and its recent counts of live metrics."""

    rule: DataHealthRule
    counts: deque[tuple[float, int]] = field(default_factory=deque)
    dropped: bool = False
    stale: int = 0
    fresh: int = 0

    def baseline(self, now: float, fresh: int) -> int:
        """The most metrics seen arriving within the rule's baseline window, this
        check's ``fresh`` included."""
        self.counts.append((now, fresh))
        while self.counts and self.counts[0][0] < now - self.rule.baseline:
            self.counts.popleft()
        return max(n for _, n in self.counts)


def catch_all(settings: Settings) -> DataHealthRule | None:
    cfg = settings.thunder
    stale_after = catch_all_stale_after(cfg, settings.skyline.metrics_inactive_after)
    if not stale_after:
        return None
    # Skyline's own metrics are left to the heartbeat watch (a stopped daemon is DOWN).
    return DataHealthRule(namespace=r"re:^(?!skyline\.)", name="all", stale_after=stale_after,
                          min_fraction=cfg.min_fraction)  # fmt: skip


class DataHealth:
    """One check per call of ``check``; ``emit`` receives each event to raise."""

    def __init__(self, settings: Settings, client: redis.Redis, keys: RedisKeys,
                 emit: Callable[[AnomalyEvent], None]) -> None:  # fmt: skip
        self.settings = settings
        self.redis = client
        self.keys = keys
        self.store = TimeSeriesStore(client, keys)
        self.emit = emit
        rules = list(settings.data_health)
        default = catch_all(settings)
        if default is not None:
            rules.append(default)
        self.rules = [RuleState(r) for r in rules]

    def rule_of(self, metric: str) -> int | None:
        """Index of the first rule matching ``metric``."""
        for i, state in enumerate(self.rules):
            if state.rule.matches(metric):
                return i
        return None

    def check(self, now: float | None = None) -> list[AnomalyEvent]:
        now = time.time() if now is None else now
        if not self.rules:
            return []
        metrics = self.store.metrics()
        last = self.store.last_timestamps(metrics)
        known = {
            k.decode(): int(v)
            for k, v in cast(
                dict[bytes, bytes], self.redis.hgetall(self.keys.thunder_stale())
            ).items()
        }
        by_rule: list[tuple[list[str], list[str]]] = [([], []) for _ in self.rules]
        for metric, ts in last.items():
            i = self.rule_of(metric)
            if i is not None:
                stale, fresh = by_rule[i]
                (stale if ts < now - self.rules[i].rule.stale_after else fresh).append(metric)
        events: list[AnomalyEvent] = []
        newly: dict[FieldT, EncodableT] = {}
        for i, state in enumerate(self.rules):
            stale, fresh = by_rule[i]
            state.stale, state.fresh = len(stale), len(fresh)
            new = [m for m in stale if m not in known]
            for m in new:
                newly[m] = last[m]
            if new:
                events.append(self._stale_event(state, new, len(stale), len(fresh), now, last))
            event = self._count_check(state, len(fresh), now)
            if event is not None:
                events.append(event)
        back = [m for m in known if m not in last or self._fresh(m, last[m], now)]
        pipe = self.redis.pipeline(transaction=False)
        if newly:
            pipe.hset(self.keys.thunder_stale(), mapping=newly)
        if back:
            pipe.hdel(self.keys.thunder_stale(), *back)
        pipe.execute()
        for m in back:
            if m in last:
                log.info("data health: %s arrives again", m)
        for event in events:
            log.warning("data health: %s: %s", event.metric, event.note)
            self.emit(event)
        return events

    def _fresh(self, metric: str, ts: int, now: float) -> bool:
        i = self.rule_of(metric)
        return i is None or ts >= now - self.rules[i].rule.stale_after

    def _stale_event(self, state: RuleState, new: list[str], stale: int, fresh: int,
                     now: float, last: dict[str, int]) -> AnomalyEvent:  # fmt: skip
        rule = state.rule
        new.sort()
        names = ", ".join(new[:LISTED]) + (
            f" and {len(new) - LISTED} more" if len(new) > LISTED else ""
        )
        oldest = min(last[m] for m in new)
        if fresh == 0:
            every = f"all {stale} metrics" if stale > 1 else "the only metric"
            what = f"{every} of {rule.name} stopped arriving"
        else:
            what = (
                f"{len(new)} metric{'' if len(new) == 1 else 's'} of {rule.name} stopped arriving"
            )
        note = (f"{what}: {names} (no datapoint for {rule.stale_after} s or more; the "
                f"oldest last point was {int(now - oldest)} s ago; roomba deletes a metric "
                f"after {self.settings.skyline.metrics_inactive_after} s)")  # fmt: skip
        return self._event(f"{rule.name}.stale", float(stale), "stale", now, note,
                           {"stale": float(stale), "fresh": float(fresh), "newly_stale": float(len(new))})  # fmt: skip

    def _count_check(self, state: RuleState, fresh: int, now: float) -> AnomalyEvent | None:
        rule = state.rule
        usual = state.baseline(now, fresh)
        if not rule.min_fraction or not usual:
            return None
        low = fresh < rule.min_fraction * usual
        if not low:
            state.dropped = False
            return None
        if state.dropped:
            return None
        state.dropped = True
        note = (f"{fresh} metrics of {rule.name} arrive, against {usual} within the last "
                f"{rule.baseline} s (below {rule.min_fraction:g} of them)")  # fmt: skip
        return self._event(f"{rule.name}.count_drop", float(fresh), "count_drop", now, note,
                           {"fresh": float(fresh), "usual": float(usual)})  # fmt: skip

    def _event(self, suffix: str, value: float, check: str, now: float, note: str,
               scores: dict[str, float]) -> AnomalyEvent:  # fmt: skip
        return AnomalyEvent(
            metric=f"skyline.thunder.data.{suffix}",
            timestamp=int(now),
            value=value,
            source="thunder",
            algorithms_run=(check,),
            triggered=(check,),
            scores=scores,
            full_duration=self.settings.skyline.full_duration,
            detected_at=now,
            host=self.settings.host_name,
            note=note,
        )
