"""The Status page and /api/v1/status list every live member of each daemon kind, on
any host, with the share of the metrics an analyzer reports (docs/scaling.md)."""

from __future__ import annotations

import json
import time

from skyline.runtime.membership import Membership
from tests.integration.test_webapp_http import Browser, running_webapp, webapp_settings


def test_status_shows_members_and_their_shares(make_settings, tmp_path) -> None:
    settings = webapp_settings(make_settings, tmp_path)
    with running_webapp(settings) as (daemon, base):
        b = Browser(base)
        assert b.login().status_code == 302
        a = Membership(daemon.redis, daemon.keys, "analyzer", "node-a", 30, time.time, pid=101)
        c = Membership(daemon.redis, daemon.keys, "analyzer", "node-c", 30, time.time, pid=303)
        a.renew({"runs": 7, "metrics": 600, "total": 1000, "share": 0.6})
        c.renew({"runs": 9, "metrics": 400, "total": 1000, "share": 0.4})
        gone = Membership(daemon.redis, daemon.keys, "analyzer", "node-x", 30, lambda: 0.0)
        gone.renew({"share": 1.0, "metrics": 1000})  # its lease ran out long ago
        page = b.get(b.url("/status")).text
        assert 'id="members"' in page
        assert a.id in page and "60.0 % (600 metrics)" in page
        assert c.id in page and "40.0 % (400 metrics)" in page
        assert gone.id not in page, "an expired member is not listed"
        api = json.loads(b.get(b.url("/api/v1/status")).text)
        analyzer = next(d for d in api["daemons"] if d["name"] == "analyzer")
        rows = {m["host"]: m for m in analyzer["members"]}
        assert set(rows) == {"node-a", "node-c"}
        assert rows["node-a"]["share"] == 0.6 and rows["node-a"]["pid"] == 101
        assert rows["node-c"]["metrics"] == 400 and rows["node-c"]["runs"] == 9
