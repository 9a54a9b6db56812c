"""The demo's synthetic metrics, the anomalies injected into them, and the timing of
its story (``skyline demo``, skyline.cli.demo): what mirage and the default detector
need for the story to be told, and why (tests/unit/test_demo_data.py measures it)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

PREFIX = "demo."


@dataclass
class DemoMetric:
    name: str
    kind: str  # seasonal | counter | flat | gauge
    base: float
    amplitude: float = 0.0
    noise: float = 0.0
    phase: float = 0.0
    total: float = 0.0  # counters: running total

    def normal(self, ts: float, rng: random.Random, step: float) -> float:
        day = 2 * math.pi * (ts % 86400) / 86400
        if self.kind == "flat":
            return self.base
        if self.kind == "counter":
            rate = self.base * (1 + 0.5 * math.sin(day + self.phase)) + rng.gauss(0, self.noise)
            self.total += max(0.0, rate) * step
            return round(self.total)
        level = self.base + self.amplitude * math.sin(day + self.phase)
        return max(0.0, level + rng.gauss(0, self.noise))

    @property
    def scale(self) -> float:
        """How far from normal an injected anomaly goes."""
        return 10 * (self.amplitude + 3 * self.noise) + 0.5 * self.base


def demo_metrics() -> list[DemoMetric]:
    p = PREFIX
    return [
        DemoMetric(p + "shop.checkout.latency_ms", "seasonal", 120, 25, 3, 0.3),
        DemoMetric(p + "shop.web.requests_per_s", "seasonal", 800, 300, 25, 1.1),
        DemoMetric(p + "shop.web.errors_per_s", "gauge", 2, 0, 0.4),
        DemoMetric(p + "shop.db.connections", "seasonal", 60, 15, 2, 2.0),
        DemoMetric(p + "shop.db.query_time_ms", "seasonal", 8, 2, 0.3, 0.7),
        DemoMetric(p + "shop.queue.depth", "seasonal", 40, 10, 3, 4.0),
        DemoMetric(p + "shop.cache.hit_ratio", "seasonal", 0.92, 0.03, 0.004, 5.0),
        DemoMetric(p + "infra.web1.cpu_user", "seasonal", 35, 20, 2.5, 0.9),
        DemoMetric(p + "infra.web2.cpu_user", "seasonal", 33, 19, 2.5, 1.0),
        DemoMetric(p + "infra.web1.net_bytes_total", "counter", 5e5, 0, 2e4, 0.5),
        DemoMetric(p + "shop.orders_total", "counter", 3, 0, 0.5, 0.2),
        DemoMetric(p + "infra.web1.disk_total_bytes", "flat", 5e11),
        DemoMetric(p + "infra.web1.cores", "flat", 8),
        DemoMetric(p + "shop.feature_flags", "flat", 12),
    ]


# Metrics that move together: an injection into the first also moves the second, the
# same way at the same time (slow queries make checkout slow; more requests, more CPU),
# so luminosity finds the pair correlated.  Without partners nothing moves with an
# injected anomaly, and luminosity rightly stores no correlation for it.
PARTNERS = {
    "shop.checkout.latency_ms": "shop.db.query_time_ms",
    "shop.web.requests_per_s": "infra.web1.cpu_user",
    "shop.db.connections": "shop.queue.depth",
    "shop.cache.hit_ratio": "shop.db.query_time_ms",
    "infra.web2.cpu_user": "shop.checkout.latency_ms",
}


def partner_of(metric: DemoMetric, metrics: list[DemoMetric]) -> DemoMetric | None:
    name = PARTNERS.get(metric.name.removeprefix(PREFIX))
    return next((m for m in metrics if m.name == PREFIX + name), None) if name else None


# Points between the story's timeout and its repeat.  The default detector measures a
# surprise against the metric's own decaying peak (half-life 1,000 points): the same
# timeout again is news to it once that peak has decayed enough (SpikeLevel version 9,
# twelve seeds: 0.74-0.88 at 360 points, 0.77-0.90 at 420), or sooner if it happens to go
# beyond the first (a new extreme).  480 leaves a margin: the repeat scores 0.80-0.91
# there against the threshold 0.75.  tests/unit/test_demo_data.py checks the repeat at
# 480, and a slightly smaller one at 90 (not flagged).  The first is in the backfill, so
# the gap costs no waiting.
# Panorama stores the repeat although it may come within ``[panorama] expiry`` of the
# first: the first was trained as normal since (skyline.events.panorama.agent).
REPEAT_POINTS = 480
# Hours of history backfilled at the live interval: mirage's day at minutes (the demo's
# rule) is read from the raw series, and the story's first timeout sits in it.
BACKFILL_HOURS = 25.0
# Seconds from the start to the story's repeat (live): time for the analyzer to find the
# first in the backfill, mirage to confirm it, the alert and the training.
REPEAT_AT = 90.0
# Seconds between live datapoints.  REPEAT_POINTS of them separate the story's two
# timeouts; the first sits that far back in the backfill, so the story does not wait.
DEFAULT_INTERVAL = 10.0


def default_repeat_after(interval: float) -> float:
    """Seconds from the story's timeout to its repeat: after the detector's memory of
    the first (``REPEAT_POINTS``)."""
    return REPEAT_POINTS * interval


# How far above normal an injection goes, in the metric's scale.  A timeout is one point
# so high that mirage, which judges bucket means, still sees it when the other points of
# its bucket dilute it (a 1x spike in a bucket of 60 points is lost).
HEIGHT = {"spike": 1.0, "timeout": 20.0, "level_shift": 0.6}


@dataclass
class Injection:
    metric: DemoMetric
    kind: str  # spike | timeout | level_shift | drop
    start: float
    end: float
    partner: DemoMetric | None = None

    @property
    def metrics(self) -> tuple[DemoMetric, ...]:
        return (self.metric, self.partner) if self.partner else (self.metric,)

    def describe(self) -> str:
        """``a timeout into <metric> and <partner>``, for the demo's log."""
        partner = f" and {self.partner.name}" if self.partner else ""
        return f"a {self.kind.replace('_', ' ')} into {self.metric.name}{partner}"

    def apply(self, ts: float, value: float, metric: DemoMetric | None = None) -> float:
        if not self.start <= ts < self.end:
            return value
        if self.kind == "drop":
            return value * 0.02
        return value + (metric or self.metric).scale * HEIGHT[self.kind]


# A one-point timeout in a mirage bucket of more points than this is diluted by the
# bucket's mean enough to be cleared late in the bucket (10-minute buckets at 10 s: 60
# points); in fewer (minutes at 10 s: 6) it is confirmed anywhere (test_demo_data.py).
DILUTED_AFTER = 10


def early_in_bucket(t: float, resolution: int) -> float:
    """``t``, or the first time after it early in one of mirage's buckets (within its
    first fifth).  Mirage judges bucket means and the anomaly's bucket ends at the
    anomaly: in 10-minute buckets a timeout late in its bucket is diluted by the
    bucket's earlier points, and the same timeout again, with the first one's bucket
    in the window, is then rightly cleared (5 of 9 algorithms, measured with ``make
    run``; the ensemble's three-bucket tail average dilutes it further).  Early in a
    bucket it stands out (tests/unit/test_demo_data.py judges both with mirage's own
    code).  The demo's rule judges minutes, where at 10 s it stands out anywhere: the
    demo waits only when a bucket holds more than ``DILUTED_AFTER`` points."""
    offset = t % resolution
    if offset <= resolution // 5:
        return t
    return t - offset + resolution + resolution // 10


def early_before(t: float, resolution: int) -> float:
    """The latest time at or before ``t`` that ``early_in_bucket`` would give."""
    start = t - t % resolution
    early = start + resolution // 10
    return early if early <= t else early - resolution
