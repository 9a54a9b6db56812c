"""Thunder: a daemon whose heartbeat disappears is raised through the alert pipeline."""

from __future__ import annotations

import json
import time

from skyline.alerting.thunder.watch import Thunder
from skyline.events.anomaly import read_all
from skyline.runtime.membership import Membership
from tests.integration.pipeline_fixtures import running


def test_a_vanished_heartbeat_becomes_a_down_event(make_settings, tmp_path, redis_client):
    conf = tmp_path / "skyline.conf"
    conf.write_text('[[alerts]]\npattern = "skyline.thunder"\nchannel = "slack"\n')
    settings = make_settings(conf, SKYLINE__THUNDER__INTERVAL="0.05")
    thunder = Thunder(settings)
    beat = json.dumps({"ts": time.time(), "runs": 1})
    redis_client.set(thunder.keys.heartbeat("horizon"), beat, ex=60)
    with running(thunder, ready="seen"):
        deadline = time.monotonic() + 5
        while thunder.seen.get("horizon") is not True and time.monotonic() < deadline:
            time.sleep(0.05)
        redis_client.delete(thunder.keys.heartbeat("horizon"))  # horizon died
        while not read_all(redis_client, thunder.keys) and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    events = read_all(redis_client, thunder.keys)
    assert [e.metric for e in events] == ["skyline.thunder.horizon.down"]
    assert events[0].source == "thunder"
    alerts = redis_client.xrange(thunder.keys.alerts_stream())
    assert len(alerts) == 1, "a rule matches skyline.thunder: the DOWN goes to the alerters"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_lost_member_is_raised_once_even_while_the_heartbeat_lives(
    make_settings, tmp_path, redis_client
):
    """Three analyzers share one heartbeat: one killed is seen by its lease."""
    conf = tmp_path / "skyline.conf"
    conf.write_text('[[alerts]]\npattern = "skyline.thunder"\nchannel = "slack"\n')
    settings = make_settings(conf, SKYLINE__SKYLINE__MEMBER_LEASE="10")
    clock = Clock(1_700_000_000.0)
    thunder = Thunder(settings, clock=clock)
    thunder.setup()
    members = [Membership(redis_client, thunder.keys, "analyzer", f"node{i}", 10, clock, pid=100 + i)
               for i in range(3)]  # fmt: skip
    stopped = Membership(redis_client, thunder.keys, "mirage", "node0", 10, clock, pid=7)
    for m in [*members, stopped]:
        m.renew()
    thunder.watch_members()
    assert read_all(redis_client, thunder.keys) == []
    assert thunder.counters.peek()["analyzer.members"] == 3
    clock.t += 6
    members[0].renew()
    members[2].renew()  # node1 was killed: no renewal, no leave
    stopped.leave()  # a clean stop is not a loss
    clock.t += 5
    thunder.watch_members()
    thunder.watch_members()  # reported once
    events = read_all(redis_client, thunder.keys)
    assert [e.metric for e in events] == ["skyline.thunder.analyzer.member_lost"]
    assert "process 101 on node1" in events[0].note and events[0].timestamp == int(clock.t - 1)
    assert thunder.counters.peek()["analyzer.members"] == 2
    assert thunder.counters.peek()["members_lost"] == 1
    clock.t += 20  # removed from the hash one lease later, then forgotten
    members[0].renew()
    members[2].renew()
    thunder.watch_members()
    thunder.watch_members()
    assert len(read_all(redis_client, thunder.keys)) == 1
    assert thunder.lost == set()
