"""Thunder's heartbeat watch.

Every run it reads the heartbeat of each built daemon and publishes, as its own
counters, how many are alive and each one's heartbeat age.  A daemon whose
heartbeat disappears after being seen is logged as DOWN once (and UP again when
it returns), so the transition is visible in ``var/log/thunder.log``; alerting
on it joins the alert pipeline when the alerters exist.
"""

from __future__ import annotations

import json

from skyline.daemon import Daemon
from skyline.daemons import built


class Thunder(Daemon):
    name = "thunder"

    def setup(self) -> None:
        self.seen: dict[str, bool] = {}

    def run_once(self) -> None:
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

    def _transition(self, daemon: str, up: bool) -> None:
        before = self.seen.get(daemon)
        if up and before is False:
            self.log.info("%s is UP again", daemon)
        elif not up and before:
            self.log.warning("%s is DOWN: no heartbeat", daemon)
            self.counters.inc("down_events")
        if up or before is not None:
            self.seen[daemon] = up
