"""Thunder: a daemon whose heartbeat disappears is raised through the alert pipeline."""

from __future__ import annotations

import json
import time

from skyline.alerting.thunder.watch import Thunder
from skyline.events.anomaly import read_all
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
