"""The horizon daemon: listeners -> intake -> buffer -> writers -> store; roomba.

The daemon's own loop runs every second: it publishes the buffer's gauges and,
every ``roomba_interval``, runs roomba (trim, sort, de-duplicate, delete inactive)
over all metrics; every ``[mirage] rollup_interval`` roomba first folds complete
buckets into mirage's rollups (skyline.store.rollups) of the metrics ``[mirage] rollups``
selects, and deletes a metric's rollup with its series.  A failed fold is logged and
counted (``rollups.errors``) and the trim runs anyway.  Ingest never waits for roomba: listeners and writers have their
own threads, and roomba's rewrites keep whatever is appended meanwhile.

Several horizons (on several hosts, or on one with their own ports) split roomba's
work: each trims and folds only its share of the metrics, by rendezvous hash over
the live horizon members (``skyline.runtime.membership``), so no metric is rewritten
or folded by two at once, and a dead horizon's share moves to the others at their
next roomba after its lease ran out.
"""

from __future__ import annotations

import time
from functools import cached_property

from skyline.ingest.horizon.buffer import PointBuffer
from skyline.ingest.horizon.intake import Intake
from skyline.ingest.horizon.listeners import Listeners
from skyline.ingest.horizon.rollup_scope import RollupScope
from skyline.ingest.horizon.writer import Writer
from skyline.runtime.daemon import Daemon
from skyline.store.name_filter import NameFilter
from skyline.store.rollups import Rollups

STOP_TIMEOUT = 10.0  # seconds writers keep trying to flush at stop while Redis is down


class Horizon(Daemon):
    name = "horizon"
    interval = 1.0

    def setup(self) -> None:
        cfg = self.settings.horizon
        self.buffer = PointBuffer(
            batch_points=cfg.batch_points,
            batch_interval=cfg.batch_interval,
            high=cfg.queue_high,
            low=cfg.queue_low,
            limit=cfg.queue_limit,
            counters=self.counters,
        )
        self.intake = Intake(
            buffer=self.buffer,
            counters=self.counters,
            name_filter=NameFilter(cfg.skip, cfg.do_not_skip),
            max_age=cfg.max_age,
            max_future=cfg.max_future,
            log=self.log,
            clock=self.clock,
        )
        self.writers = [
            Writer(self.buffer, self.store, self.counters, self.settings.skyline.retry_backoff_max)
        ]
        self.listeners = Listeners(cfg, self.intake)
        self.listeners.start()
        for writer in self.writers:
            writer.start()
        self._next_roomba = time.monotonic() + cfg.roomba_interval
        self._next_rollup = 0.0  # the first roomba also folds the rollups
        self.store.companions = self.companions_of  # store.delete() deletes them too
        ports = ", ".join(f"{k}={v}" for k, v in self.listeners.ports.items())
        self.log.info("listening on %s: %s", cfg.bind, ports)

    def run_once(self) -> None:
        self.counters.gauge("queue_points", self.buffer.pending)
        self.counters.gauge("paused_now", int(self.buffer.paused))
        if time.monotonic() >= self._next_roomba:
            self.roomba()

    def roomba(self) -> None:
        cfg = self.settings.horizon
        t0 = time.monotonic()
        metrics = self.roomba_share(self.store.metrics())
        if time.monotonic() >= self._next_rollup:
            self.roll_up(metrics)
        outcome = self.store.trim_many(
            metrics,
            now=self.clock(),
            keep_seconds=self.settings.skyline.full_duration,
            grace=cfg.roomba_grace,
            inactive_after=self.settings.skyline.metrics_inactive_after,
            companions=self.companions_of,
        )
        for what, n in outcome.items():
            self.counters.inc(f"roomba.{what}", n)
        self.counters.gauge("roomba.run_time", round(time.monotonic() - t0, 3))
        self._next_roomba = time.monotonic() + cfg.roomba_interval

    def roomba_share(self, metrics: list[str]) -> list[str]:
        """The metrics this horizon's roomba looks after (all of them when alone)."""
        shares = self.membership.live_shares()
        mine = shares.mine(self.membership.id, metrics)
        self.roomba_info = {"members": len(shares.members), "metrics": len(mine),
                            "total": len(metrics),
                            "share": round(len(mine) / len(metrics), 4) if metrics else None}  # fmt: skip
        self.counters.gauge("roomba.share_metrics", len(mine))
        return mine

    def member_info(self) -> dict[str, object]:
        return dict(getattr(self, "roomba_info", {}))

    @cached_property
    def rollup_scope(self) -> RollupScope:
        return RollupScope(self.settings)

    def companions_of(self, metric: str) -> list[str]:
        """Keys deleted with the metric's series (whether or not it has them): its
        rollup and its detector state."""
        return [
            self.keys.rollup(self.settings.mirage.rollup_resolution, metric),
            self.keys.detector_state(metric),
        ]

    def roll_up(self, metrics: list[str]) -> None:
        """Fold complete buckets into mirage's rollups (skyline.store.rollups), before the
        trim, so no raw point is trimmed unfolded.  A failure is logged and counted,
        never raised: the trim that follows must run whatever happens here."""
        cfg = self.settings.mirage
        t0 = time.monotonic()
        self._next_rollup = t0 + cfg.rollup_interval
        selected = self.rollup_scope.select(metrics)
        if not selected:
            return
        try:
            outcome = Rollups(self.store, cfg.rollup_resolution).roll_up(
                selected, now=self.clock(), retention=cfg.rollup_retention, lag=cfg.rollup_lag
            )
        except Exception:  # a Redis outage included: the trim decides how to fail
            self.counters.inc("rollups.errors")
            self.log.exception("rollup pass over %d metrics failed; trimming anyway", len(selected))
            return
        for what, n in outcome.items():
            self.counters.inc(f"rollups.{what}", n)
        self.counters.gauge("rollups.run_time", round(time.monotonic() - t0, 3))

    def flush(self) -> None:
        """Stop reading, then write everything already received."""
        if not hasattr(self, "listeners"):
            return
        self.listeners.stop()
        for writer in self.writers:
            writer.stop(STOP_TIMEOUT)
        self.log.info("flushed; %d datapoints left unwritten", self.buffer.pending)
