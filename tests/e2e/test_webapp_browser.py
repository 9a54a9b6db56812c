"""The web UI in a real browser (Debian's headless Chromium driven by Playwright):
log in, the live Now page, an anomaly with its drawn graph, labelling, metric search,
escaping, logout; and the README's ``make run`` sequence showing the demo anomaly
on the Now page.

Screenshots for docs/webapp.md: ``SKYLINE_SCREENSHOTS=1 pytest tests/e2e/test_webapp_browser.py``
writes them to docs/img/ (otherwise to the test's temporary directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.db import make_engine
from skyline.db.models import Anomaly, Metric
from skyline.events.anomaly import event_id
from tests.e2e.browser import INK, ROOT
from tests.e2e.browser import login as _login
from tests.e2e.browser import new_page as _page
from tests.e2e.browser import shot as _shot
from tests.integration.test_webapp_http import (
    ADMIN_PASSWORD,
    running_webapp,
    seed,
    webapp_settings,
)


def test_browse_label_search_logout(browser, make_settings, tmp_path, shots):
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__WEBAPP__PAGE_SIZE="50")
    with running_webapp(settings) as (daemon, base):
        ids = seed(settings, daemon.store)
        context, page, problems = _page(browser)
        # not logged in: any page leads to the login form
        page.goto(base + "/anomalies?metric=web")
        assert "/login" in page.url
        _shot(page, shots / "webapp-login.png")
        _login(page, base, "admin", ADMIN_PASSWORD)
        page.wait_for_url("**/anomalies?metric=web")
        page.goto(base + "/now")
        rows = page.locator("#now tbody tr")
        assert rows.count() == 4  # the 3-day-old anomaly is not "now"
        # the evil metric name is shown as text, never run
        assert page.locator("#now td.metric", has_text="<script>").count() == 1
        # live: a new anomaly appears without a reload
        _add_anomaly(settings, "web.checkout.errors")
        page.locator("#now tbody tr.new", has_text="web.checkout.errors").wait_for(timeout=15000)
        assert rows.count() == 5
        # live: a shown row's verdict changes in place (mirage cleared it, say)
        _set_verdict(settings, "web.checkout.errors", "not_anomalous")
        changed = page.locator("#now tbody tr", has_text="web.checkout.errors").locator(".verdict")
        changed.filter(has_text="not_anomalous").wait_for(timeout=15000)
        assert rows.count() == 5
        _shot(page, shots / "webapp-now.png")
        # open the alerted anomaly: graph drawn, trail, algorithms
        page.locator(f'#now tr[data-id="{ids["a0"]}"] td.metric a').click()
        page.wait_for_selector("#anomaly-chart[data-drawn='1'] canvas", timeout=15000)
        assert page.evaluate(INK, "#anomaly-chart") > 0.002, "the chart canvas is blank"
        assert page.locator("ol.trail li.reached").count() == 2
        assert page.locator("#algorithms tbody tr").count() == 3
        _shot(page, shots / "webapp-anomaly.png", full_page=True)
        page.click("#label-tp")
        page.wait_for_selector("p.flash")
        assert "true positive" in page.inner_text("#current-label")
        # metric search and graph
        page.click("header nav >> text=Metrics")
        page.fill("#metric-search", "latency")
        page.press("#metric-search", "Enter")
        page.locator("#metric-list a", has_text="web.latency").click()
        page.wait_for_selector("#metric-chart[data-drawn='1'] canvas", timeout=15000)
        assert page.evaluate(INK, "#metric-chart") > 0.002
        _shot(page, shots / "webapp-metrics.png")
        page.goto(base + "/anomalies?label=true_positive")
        assert page.locator("#anomalies tbody tr").count() == 1
        page.goto(base + "/anomalies")
        _shot(page, shots / "webapp-anomalies.png")
        page.goto(base + "/status")
        assert page.locator("#daemons", has_text="webapp").count() == 1
        assert page.locator("#members").count() == 1  # live processes and their shares
        # an API call from a client without a token or session: 401
        assert context.request.get(base + "/api/v1/anomalies").status == 200  # the session
        anonymous = browser.new_context()
        assert anonymous.request.get(base + "/api/v1/anomalies").status == 401
        anonymous.close()
        page.click("#logout")
        page.wait_for_url("**/login")
        page.goto(base + "/now")
        assert "/login" in page.url
        context.close()
    assert not problems, problems


def _add_anomaly(settings, metric: str) -> None:
    now = int(time.time())
    with Session(make_engine(settings.database_url)) as db:
        m = Metric(name=metric)
        db.add(m)
        db.flush()
        db.add(Anomaly(metric_id=m.id, timestamp=now, value=42.0, full_duration=86400,
                       source="analyzer", algorithms_run=["grubbs"], triggered_algorithms=["grubbs"],
                       scores={}, verdict="pending", event_id=event_id("analyzer", metric, now)))  # fmt: skip
        db.commit()


def _set_verdict(settings, metric: str, verdict: str) -> None:
    with Session(make_engine(settings.database_url)) as db:
        a = db.scalars(select(Anomaly).join(Metric).where(Metric.name == metric)).one()
        a.verdict = verdict
        db.commit()


def _skyline(env: dict[str, str], *args: str, timeout: float = 90) -> str:
    proc = subprocess.run([sys.executable, "-m", "skyline.cli.main", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, f"skyline {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


# One at a time under pytest-xdist (Makefile: --dist loadgroup): each runs a whole
# Skyline, and two at once on a 2-core machine only make both slower.
@pytest.mark.xdist_group("full_stack")
@pytest.mark.slow
def test_make_run_shows_the_demo_anomaly(browser, tmp_path, shots):
    """`make run` on a clean install: embedded Redis, SQLite, every daemon, the demo.
    (No time is asserted: the wait below is a deadline for a stuck run, not a speed
    test; the story's timing, seen live, is in docs/webapp.md.)"""
    var = tmp_path / "var"
    conf = tmp_path / "skyline.conf"
    conf.write_text(f'[skyline]\nvar_dir = "{var}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYLINE")}
    # counters every 10 s instead of 60, only so that the Status screenshot shows some
    env.update(
        SKYLINE_CONF=str(conf), OPENBLAS_NUM_THREADS="1", SKYLINE__SKYLINE__COUNTERS_INTERVAL="10"
    )
    try:
        _skyline(env, "config", "check")
        _skyline(env, "db", "upgrade")
        _skyline(env, "start", "all", "--pick-free-ports")
        demo = subprocess.run([sys.executable, "-m", "skyline.cli.demo", "--background"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert demo.returncode == 0, demo.stderr
        assert "password:" in demo.stdout and "/now" in demo.stdout
        url = demo.stdout.split("Web UI: ")[1].split()[0]
        password = demo.stdout.split("password: ")[1].split()[0]
        context, page, problems = _page(browser)
        page.goto(url)
        _login(page, url, "admin", password)
        page.wait_for_url("**/now")
        # the story's timeout in checkout latency, in the backfill (its partner in the db
        # query time may be recorded first: the analyzer takes new metrics in any order)
        row = page.locator("#now tbody tr", has_text="demo.shop.checkout.latency_ms")
        row.first.wait_for(timeout=300_000)
        _shot(page, shots / "webapp-demo-now.png")
        row.first.locator("td.metric a").click()
        page.wait_for_selector("#anomaly-chart[data-drawn='1'] canvas", timeout=15000)
        assert page.evaluate(INK, "#anomaly-chart") > 0.002
        _shot(page, shots / "webapp-demo-anomaly.png")
        page.click("header nav >> text=Status")
        # click returns once the navigation starts: count() below does not wait, so let
        # the page load first (on a loaded machine the table may not be parsed yet)
        page.wait_for_load_state()
        for name in ("horizon", "analyzer", "panorama", "webapp"):
            assert page.locator("#daemons tr", has_text=name).locator(".state.up").count() == 1, (
                name
            )
        _shot(page, shots / "webapp-status.png", full_page=True)
        context.close()
        assert not problems, problems
    finally:
        subprocess.run([sys.executable, "-m", "skyline.cli.demo", "--stop"], env=env, cwd=ROOT,
                       capture_output=True, timeout=30)  # fmt: skip
        subprocess.run([sys.executable, "-m", "skyline.cli.main", "stop", "all"], env=env, cwd=ROOT,
                       capture_output=True, timeout=120)  # fmt: skip
