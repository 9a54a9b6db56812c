"""Ionosphere end to end on real parts, with an operator in a real browser:

1. a metric with a recurring pattern (a nightly batch that ramps the value up) raises
   an anomaly and one Slack alert;
2. the operator opens the anomaly in the web UI and clicks "Train as normal";
3. the same pattern the next day is again an analyzer anomaly, which ionosphere marks
   not anomalous with the profile's id: no alert;
4. a different, real anomaly on the same metric still alerts.

Analyzer, ionosphere, panorama, alerters and the webapp run in threads on the test's
Redis and on SQLite, then MariaDB; ionosphere caches the profiles in a real memcached
when one is installed.  The analyzer's clock is the test's, so that a day
passes in a second.  Screenshots for docs/ionosphere.md: ``SKYLINE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack

import numpy as np
from pymemcache.client.base import Client as MemcacheClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.analysis.analyzer.agent import Analyzer
from skyline.analysis.ionosphere.agent import Ionosphere
from skyline.db import make_engine
from skyline.db.models import Anomaly, ProfileMatch
from skyline.events.anomaly import event_id
from skyline.events.panorama.agent import Panorama
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.e2e.browser import login, new_page, shot
from tests.integration import conftest_db
from tests.integration.fake_services import fake_slack
from tests.integration.pipeline_fixtures import pipeline_settings, running
from tests.integration.test_ionosphere_cache import memcached  # noqa: F401  (fixture)
from tests.integration.test_webapp_http import ADMIN_PASSWORD

STEP, DAY = 60, 86400
METRIC = "etl.nightly.rows_per_s"

db_url = conftest_db.db_url  # on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def day_of_data(end: int) -> tuple[list[int], list[float]]:
    """24 h ending at ``end``: steady noise, the nightly batch's ramp in the last 12
    minutes.  Every day is the same, as a recurring pattern is."""
    ts = end - STEP * np.arange(DAY // STEP)[::-1]
    values = 200 + np.random.default_rng(5).normal(0, 3, len(ts))
    values[-12:] += np.linspace(30, 360, 12)
    return ts.tolist(), values.round(3).tolist()


def anomaly_at(engine, ts: int) -> Anomaly | None:
    with Session(engine) as db:
        a = db.scalar(select(Anomaly).where(Anomaly.event_id == event_id("analyzer", METRIC, ts)))
        if a is not None:
            a.trail = [(v.stage, v.verdict) for v in a.verdicts]  # type: ignore[attr-defined]
        return a


def test_a_profile_trained_in_the_browser_silences_the_recurring_pattern(
    browser,
    make_settings,
    tmp_path,
    db_url,
    shots,
    request,
):
    slack = fake_slack()
    conf = f"""
[alerters]
retry_backoff = 0.2
graph = false
[alerters.slack]
token = "xoxb-e2e"
channel = "C0SKY"
base_url = "{slack.url}/api/"
[[alerts]]
pattern = "etl.nightly"
channel = "slack"
expiration = 0
"""
    # ionosphere caches profiles in memcached when one is there (.ci/run installs it)
    cache = request.getfixturevalue("memcached")[1] if shutil.which("memcached") else ""
    settings = pipeline_settings(
        make_settings, tmp_path, conf, SKYLINE__DATABASE__URL=db_url,
        SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.05", SKYLINE__ANALYZER__INTERVAL="3600",
        SKYLINE__PANORAMA__INTERVAL="0.2", SKYLINE__ALERTERS__INTERVAL="0.2",
        SKYLINE__IONOSPHERE__INTERVAL="0.2", SKYLINE__WEBAPP__HTTP_SERVER="threaded",
        SKYLINE__WEBAPP__PORT=str(free_port()), SKYLINE__WEBAPP__ADMIN_PASSWORD=ADMIN_PASSWORD,
        SKYLINE__IONOSPHERE__MEMCACHED=cache,
        # the story is written around the ensemble's verdict at the ramp's last point;
        # ionosphere treats an anomaly the same whichever analyzer mode raised it
        SKYLINE__ANALYZER__MODE="classic",
    )  # fmt: skip
    engine = make_engine(settings.database_url)
    t2 = (int(time.time()) // STEP) * STEP - 3600  # the second night, an hour ago
    t1 = t2 - DAY
    clock = Clock(t1 + 5)
    posts = lambda: slack.on("/api/chat.postMessage")  # noqa: E731
    try:
        with ExitStack() as stack:
            analyzer = stack.enter_context(running(Analyzer(settings, clock=clock), "options"))
            stack.enter_context(running(Panorama(settings)))
            stack.enter_context(running(Alerters(settings)))
            stack.enter_context(running(Ionosphere(settings)))
            web = stack.enter_context(running(Webapp(settings), ready="http"))
            base = f"http://127.0.0.1:{web.port}"
            store = analyzer.store

            # 1. the first night: an anomaly and an alert
            store.append_grouped({METRIC: day_of_data(t1)}, changed=True)
            wait_for(lambda: len(posts()) == 1, timeout=30)
            first = wait_for(lambda: anomaly_at(engine, t1), timeout=20)

            # 2. the operator trains it as normal in the browser
            context, page, problems = new_page(browser)
            page.goto(f"{base}/anomaly/{first.id}")
            login(page, base, "admin", ADMIN_PASSWORD)
            page.wait_for_url(f"**/anomaly/{first.id}")
            page.fill("section.training input[name=label]", "the nightly ETL batch")
            shot(page, shots / "ionosphere-train.png")
            page.click("#train-normal")
            page.wait_for_url("**/profile/*")
            profile_id = int(page.url.rsplit("/", 1)[1])
            assert "Trained as normal" in page.inner_text("main")
            page.locator("#profile-chart canvas").wait_for(timeout=15000)
            shot(page, shots / "ionosphere-profile.png", full_page=False)

            # 3. the next night, the same pattern: ionosphere says not anomalous, no alert
            clock.now = t2 + 5
            store.append_grouped({METRIC: day_of_data(t2)}, changed=True)
            second = wait_for(lambda: (a := anomaly_at(engine, t2)) and
                              ("ionosphere", "not_anomalous") in a.trail and a, timeout=30)  # fmt: skip
            assert second.trail[0] == ("analyzer", "sent_to_ionosphere")
            assert second.verdict == "not_anomalous"
            with Session(engine) as db:
                match = db.scalars(select(ProfileMatch)).one()
            assert match.profile_id == profile_id and match.event_id == second.event_id
            detail = [v.detail for v in second.verdicts if v.stage == "ionosphere"][0]
            assert detail["profile_id"] == profile_id

            # 4. a real anomaly on the same metric: it alerts
            t3 = t2 + 30 * STEP
            clock.now = t3 + 5
            ts = list(range(t2 + STEP, t3 + STEP, STEP))
            values = [200.0 + (i % 3) for i in range(len(ts) - 1)] + [4000.0]
            store.append_grouped({METRIC: (ts, values)}, changed=True)
            wait_for(lambda: len(posts()) == 2, timeout=30)
            third = wait_for(lambda: (a := anomaly_at(engine, t3)) and a.verdict == "alerted" and a,
                             timeout=20)  # fmt: skip
            assert ("ionosphere", "sent_to_alerters") in third.trail
            assert len(posts()) == 2  # the recurring night never alerted
            assert "4000" in posts()[1].body.decode()

            # the silenced anomaly shows its profile; the metric lists the profile
            page.goto(f"{base}/anomaly/{second.id}")
            assert page.locator("#anomaly-matches a", has_text=f"profile {profile_id}").count() == 1
            shot(page, shots / "ionosphere-silenced.png", full_page=True)
            page.goto(f"{base}/metrics?name={METRIC}")
            row = page.locator(f"#metric-profiles tr[data-profile='{profile_id}']")
            assert "1" in row.locator("td.num").nth(1).inner_text()  # matched once
            row.locator(".chart.small canvas").wait_for(timeout=15000)
            shot(page, shots / "ionosphere-metric.png", full_page=True)
            assert not problems, problems
            context.close()
        if cache:  # the profiles went through memcached
            host, port = cache.split(":")
            stats = MemcacheClient((host, int(port))).stats()
            assert stats[b"cmd_set"] >= 1 and stats[b"get_hits"] >= 1, stats
    finally:
        slack.close()
