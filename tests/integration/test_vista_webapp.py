"""The webapp side of vista: the CSV upload form of the Metrics page stores through the
same route as pulled points, and the pulled sources show on the Status page and in
/api/v1/status with their last error."""

from __future__ import annotations

import json
import time

from skyline.ingest.vista.status import SourceState, publish
from tests.integration.test_webapp_http import Browser, running_webapp, webapp_settings


def test_upload_form_and_sources_status(make_settings, tmp_path) -> None:
    settings = webapp_settings(make_settings, tmp_path)
    with running_webapp(settings) as (daemon, base):
        b = Browser(base)
        assert b.login().status_code == 302
        now = int(time.time()) // 60 * 60
        body = "timestamp,value\n" + "".join(f"{now - 60 * i},{i % 4}\n" for i in range(2000))
        token = b.csrf("/metrics")
        r = b.post(b.url("/metrics/import"), data={"metric": "up.csv", "csrf_token": token},
                   files={"file": ("x.csv", body, "text/csv")})  # fmt: skip
        assert r.status_code == 200 and "Imported 2000 points into up.csv" in r.text
        live = daemon.store.read("up.csv")
        assert 1438 <= len(live) <= 1440 and live.timestamps[-1] == now
        # no CSRF token: refused, nothing stored
        r = b.post(b.url("/metrics/import"), data={"metric": "up.nocsrf"},
                   files={"file": ("x.csv", body, "text/csv")})  # fmt: skip
        assert r.status_code in (400, 403) and daemon.store.read("up.nocsrf").timestamps.size == 0
        bad = b.post(b.url("/metrics/import"), data={"metric": "up.bad", "csrf_token": token},
                     files={"file": ("x.csv", "a,b\n1,x\n", "text/csv")})  # fmt: skip
        assert bad.status_code == 400

        failing = SourceState("orders", "sql")
        failing.failed("timeout", "query ran past 30s", time.time())
        ok = SourceState("prom", "prometheus")
        ok.succeeded(120, 3, time.time())
        publish(daemon.redis, daemon.keys, [failing, ok])
        page = b.get(b.url("/status")).text
        assert "Pulled sources" in page and "timeout: query ran past 30s" in page
        api = json.loads(b.get(b.url("/api/v1/status")).text)
        by_name = {s["name"]: s for s in api["sources"]}
        assert by_name["orders"]["ok"] is False and by_name["orders"]["errors"] == {"timeout": 1}
        assert by_name["prom"]["ok"] is True and by_name["prom"]["points"] == 120
