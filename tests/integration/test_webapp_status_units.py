"""The Status page over real HTTP: counters are rounded and carry their unit (issue 16:
a raw ``1.5192e-05`` with no unit told an operator nothing), and an empty channel table
says how to check a channel."""

from __future__ import annotations

import json
import re
import time

from skyline.store.keys import RedisKeys
from tests.integration.test_webapp_admin import admin_settings
from tests.integration.test_webapp_http import Browser, running_webapp


def test_status_counters_are_rounded_with_units(make_settings, tmp_path, redis_client):
    settings = admin_settings(make_settings, tmp_path)
    keys = RedisKeys(settings.redis.prefix)
    now = time.time()
    beat = {"pid": 1, "host": "h", "started": now - 100, "ts": now - 2.25, "runs": 12345,
            "run_time": 0.01234}  # fmt: skip
    redis_client.set(keys.heartbeat("analyzer"), json.dumps(beat))
    redis_client.hset(keys.counters("luminosity"), mapping={"correlate_time": "1.5192e-05",
                                                            "correlations": "1234567"})  # fmt: skip
    redis_client.hset(keys.counters("horizon"), mapping={"datapoints_written": "150"})
    with running_webapp(settings) as (_, base):
        b = Browser(base)
        b.login()
        page = b.get(b.url("/status")).text
    assert not re.search(r"\de[-+]\d", page), "a number in exponent notation"
    assert "15.2 µs" in page and "1,234,567" in page and "12,345" in page
    assert "12.3 ms" in page  # the analyzer's last run time
    interval = settings.skyline.counters_interval
    assert f"{150 / interval:.3g} datapoints/s" in page
    assert "send a test alert from the" in page
