"""Thunder's heartbeat watch, and the data health check (``data_health.py``).

Every run it reads the heartbeat of each built daemon and publishes, as its own
counters, how many are alive and each one's heartbeat age.  A daemon whose
heartbeat disappears after being seen is logged as DOWN once (and UP again when
it returns), and the DOWN is raised through the alert pipeline as an event of the
metric ``skyline.thunder.<daemon>.down``: panorama records it, and an [[alerts]]
rule matching ``skyline.thunder`` pages someone.

Several processes of one daemon share its heartbeat key, so a heartbeat alone does
not show one of three analyzers dying.  Thunder also reads each daemon's members
(``skyline.runtime.membership``): a member whose lease ran out without leaving is
raised once as ``skyline.thunder.<daemon>.member_lost`` (its host and pid in the
note; the event's timestamp is the lease end, so the same loss reported again after
a restart of thunder has the same event id), and the live members are counted as
``<daemon>.members``.
"""

from __future__ import annotations

import json

from skyline.alerting.thunder.data_health import DataHealth
from skyline.events.anomaly import AnomalyEvent
from skyline.events.routing import Heartbeats, forward
from skyline.runtime.daemon import Daemon
from skyline.runtime.daemons import built
from skyline.runtime.membership import Member, look


class Thunder(Daemon):
    name = "thunder"

    def setup(self) -> None:
        self.seen: dict[str, bool] = {}
        self.lost: set[str] = set()  # member ids already reported
        self.data_health = DataHealth(self.settings, self.redis, self.keys, self.raise_event)
        self._next_data_check = 0.0

    def reloaded(self) -> None:
        """New [[data_health]] rules (SIGHUP); what was reported stays in Redis."""
        self.data_health = DataHealth(self.settings, self.redis, self.keys, self.raise_event)

    def run_once(self) -> None:
        self.watch_heartbeats()
        self.watch_members()
        if self.clock() >= self._next_data_check:
            self._next_data_check = self.clock() + self.settings.thunder.data_interval
            self.data_health.check(self.clock())
            for state in self.data_health.rules:
                self.counters.gauge(f"data.{state.rule.name}.stale", state.stale)
                self.counters.gauge(f"data.{state.rule.name}.fresh", state.fresh)

    def watch_heartbeats(self) -> None:
        watched = [d for d in built() if d != self.name]
        pipe = self.redis.pipeline(transaction=False)
        for daemon in watched:
            pipe.get(self.keys.heartbeat(daemon))
        now = self.clock()
        alive = 0
        for daemon, raw in zip(watched, pipe.execute(), strict=True):
            beat = json.loads(raw) if raw else None
            if beat:
                alive += 1
                self.counters.gauge(f"{daemon}.heartbeat_age", round(now - beat["ts"], 3))
            self._transition(daemon, beat is not None)
        self.counters.gauge("daemons_alive", alive)
        self.counters.gauge("daemons_down", sum(1 for up in self.seen.values() if not up))

    def watch_members(self) -> None:
        now = self.clock()
        lease = self.settings.skyline.member_lease
        reported: set[str] = set()
        for daemon in [d for d in built() if d != self.name]:
            live, expired, _ = look(self.redis, self.keys, daemon, now, lease)
            self.counters.gauge(f"{daemon}.members", len(live))
            for member in expired:
                reported.add(member.id)
                if member.id not in self.lost:
                    self.log.warning("%s member %s (host %s, pid %d) lost: its lease ran out",
                                     daemon, member.id, member.host, member.pid)  # fmt: skip
                    self.counters.inc("members_lost")
                    self.raise_lost(daemon, member)
        self.lost = reported  # an id gone from the hash is forgotten

    def raise_lost(self, daemon: str, member: Member) -> None:
        self.raise_event(
            AnomalyEvent(
                metric=f"skyline.thunder.{daemon}.member_lost",
                timestamp=int(member.until),
                value=1.0,
                source="thunder",
                algorithms_run=("membership",),
                triggered=("membership",),
                full_duration=self.settings.skyline.heartbeat_ttl,
                detected_at=self.clock(),
                host=self.settings.host_name,
                note=f"{daemon} process {member.pid} on {member.host} stopped renewing its "
                f"membership without leaving (killed, hung or cut off from Redis); the other "
                f"{daemon} processes take over its share",
            )
        )

    def _transition(self, daemon: str, up: bool) -> None:
        before = self.seen.get(daemon)
        if up and before is False:
            self.log.info("%s is UP again", daemon)
        elif not up and before:
            self.log.warning("%s is DOWN: no heartbeat", daemon)
            self.counters.inc("down_events")
            self.raise_down(daemon)
        if up or before is not None:
            self.seen[daemon] = up

    def raise_down(self, daemon: str) -> None:
        now = self.clock()
        self.raise_event(
            AnomalyEvent(
                metric=f"skyline.thunder.{daemon}.down",
                timestamp=int(now),
                value=1.0,
                source="thunder",
                algorithms_run=("heartbeat",),
                triggered=("heartbeat",),
                full_duration=self.settings.skyline.heartbeat_ttl,
                detected_at=now,
                host=self.settings.host_name,
                note=f"{daemon} has no heartbeat: it stopped or cannot reach Redis",
            )
        )

    def raise_event(self, event: AnomalyEvent) -> None:
        """Into the alert pipeline, as a new detection of thunder's."""
        pipe = self.redis.pipeline(transaction=False)
        forward(pipe, self.keys, self.settings, event, Heartbeats(self.redis, self.keys))
        pipe.execute()
