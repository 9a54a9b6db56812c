"""The demo's story end to end, on the real daemons and the embedded defaults' own
[[alerts]] rule, walked by an operator in headless Chromium:

1. the demo's timeout in checkout latency, in the backfilled history, is an analyzer
   anomaly (the analyzer judges a new metric's stored points), mirage confirms it over
   its day of history in minutes, and the alert is delivered to the file channel: one
   JSON line, and the Alerts table of the anomaly page says ``sent``;
2. luminosity relates it to the database query time the demo moved with it: the
   page's Related metrics;
3. the demo trains it as normal (a features profile; the page links it, and the
   profile page tells the data's true span);
4. the same timeout again is silenced by ionosphere: its page shows the profile and the
   reason, and the alert file has no line for it.

Horizon, analyzer, mirage, ionosphere, panorama, luminosity, the alerters and the
webapp run in threads on the test's Redis and SQLite, with the default detector,
motifs and demo rule; the demo is ``skyline demo``'s own code at its default interval
and gap (360 points, an hour), with 13 h of backfill (enough for mirage's day: half
of it) and the repeat 45 s after the start.  Panorama keeps its default repeat
window (900 s): the repeat is stored because the first was trained.  Screenshots for
docs/webapp.md: ``SKYLINE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import ExitStack

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.alerting.agent import Alerters
from skyline.analysis.analyzer.agent import Analyzer
from skyline.analysis.ionosphere.agent import Ionosphere
from skyline.analysis.luminosity.agent import Luminosity
from skyline.analysis.mirage.agent import Mirage
from skyline.cli.demo import Demo, settled_anomaly
from skyline.db import make_engine
from skyline.db.models import Anomaly, Correlation
from skyline.events.panorama.agent import Panorama
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.e2e.browser import login, new_page, shot
from tests.integration.horizon_fixtures import horizon_env, running_horizon
from tests.integration.pipeline_fixtures import pipeline_settings, running
from tests.integration.test_webapp_http import ADMIN_PASSWORD

LATENCY, QUERY_TIME = "demo.shop.checkout.latency_ms", "demo.shop.db.query_time_ms"
# mirage needs half its day (720 one-minute buckets) before the first timeout, which
# sits REPEAT_POINTS intervals (80 min) before the repeat, near the backfill's end
BACKFILL_HOURS, REPEAT_AT = 14.0, 45.0


def trail(engine, anomaly_id: int) -> list[tuple[str, str, str]]:
    with Session(engine) as db:
        a = db.get(Anomaly, anomaly_id)
        return [(v.stage, v.verdict, v.reason or "") for v in a.verdicts] if a else []


def correlated(engine, anomaly_id: int) -> list[int]:
    with Session(engine) as db:
        return list(db.scalars(select(Correlation.metric_id)
                               .where(Correlation.anomaly_id == anomaly_id)))  # fmt: skip


def settled(engine, injection, timeout: float, said: list[str]) -> tuple[int, str]:
    """The anomaly of the injection once its verdict is final; else fail showing every
    anomaly stored with its trail, and what the demo said."""
    try:
        return wait_for(lambda: settled_anomaly(engine, LATENCY, injection.start, injection.end),
                        timeout=timeout)  # fmt: skip
    except AssertionError:
        with Session(engine) as db:
            rows = [(a.id, a.metric.name, a.timestamp, trail(engine, a.id))
                    for a in db.scalars(select(Anomaly))]  # fmt: skip
        raise AssertionError(
            f"no settled anomaly at {injection.start:.0f}: {rows}; {said}"
        ) from None


# One at a time under pytest-xdist (Makefile: --dist loadgroup): each runs a whole
# Skyline, and two at once on a 2-core machine only make both slower.
@pytest.mark.xdist_group("full_stack")
def test_the_demo_tells_the_whole_story(browser, make_settings, tmp_path, shots):
    alerts = tmp_path / "alerts.jsonl"
    # no [[alerts]] table: the embedded defaults' demo rule is the one in effect
    settings = pipeline_settings(
        make_settings, tmp_path, "", **horizon_env(),
        SKYLINE__ANALYZER__ARRIVAL_INTERVAL="0.1", SKYLINE__ANALYZER__INTERVAL="3600",
        SKYLINE__PANORAMA__INTERVAL="0.2",
        SKYLINE__MIRAGE__INTERVAL="0.2",
        SKYLINE__IONOSPHERE__INTERVAL="0.2", SKYLINE__LUMINOSITY__INTERVAL="0.2",
        SKYLINE__ALERTERS__INTERVAL="0.2", SKYLINE__ALERTERS__FILE__PATH=str(alerts),
        SKYLINE__WEBAPP__HTTP_SERVER="threaded", SKYLINE__WEBAPP__PORT=str(free_port()),
        SKYLINE__WEBAPP__ADMIN_PASSWORD=ADMIN_PASSWORD,
    )  # fmt: skip
    assert [(r.pattern, r.channel, r.mirage_resolution) for r in settings.alerts] == [
        (r"^demo\.", "file", 60)]  # fmt: skip
    assert settings.analyzer.mode == "default"
    engine = make_engine(settings.database_url)
    said: list[str] = []
    with ExitStack() as stack:
        horizon = stack.enter_context(running_horizon(settings))
        # eight daemons starting at once on a busy machine: a generous wait for each
        stack.enter_context(running(Analyzer(settings), ready="options", timeout=60))
        for daemon in (Panorama, Mirage, Ionosphere, Luminosity, Alerters):
            stack.enter_context(running(daemon(settings), timeout=60))
        web = stack.enter_context(running(Webapp(settings), ready="http", timeout=60))
        base = f"http://127.0.0.1:{web.port}"
        port = horizon.listeners.ports["line_port"]
        live = settings.model_copy(
            update={"horizon": settings.horizon.model_copy(update={"line_port": port})}
        )
        demo = Demo(live, backfill_hours=BACKFILL_HOURS, history_hours=2, first_anomaly=3600,
                    repeat_at=REPEAT_AT, every=3600, seed=3, say=said.append)  # fmt: skip
        thread = threading.Thread(target=demo.run, daemon=True)
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(demo.stop_event.set)

        # 1. the timeout, in the backfill: confirmed by mirage, alerted on the file channel
        wait_for(lambda: demo.story, timeout=30)
        first_inj, repeat_inj = demo.story
        assert first_inj.start < time.time() - 2000 < repeat_inj.start - 2000, said
        first = settled(engine, first_inj, 120, said)
        first_id, verdict = first
        steps = trail(engine, first_id)
        assert verdict == "alerted", (steps, said)
        mirage = [s for s in steps if s[0] == "mirage"]
        assert mirage and "anomalous over 24 h at 60 s" in mirage[0][2], steps
        lines = [json.loads(x) for x in alerts.read_text().splitlines()]
        mine = [x for x in lines if x["metric"] == LATENCY]
        assert len(mine) == 1 and mine[0]["rule"] == r"^demo\." and mine[0]["link"].endswith(
            mine[0]["anomaly"])  # fmt: skip

        # 2. luminosity relates the partner, which moved with it
        wait_for(lambda: correlated(engine, first_id), timeout=30)

        # 3. the demo trains it as normal before the repeat comes
        profile_id = wait_for(lambda: demo.profile_id, timeout=REPEAT_AT + 60)

        context, page, problems = new_page(browser)
        page.goto(f"{base}/anomaly/{first_id}")
        login(page, base, "admin", ADMIN_PASSWORD)
        page.wait_for_url(f"**/anomaly/{first_id}")
        main = page.inner_text("main")
        assert "anomalous over 24 h" in main  # mirage's reason, in the verdict trail
        alert_row = page.locator("#anomaly-alerts tbody tr").first.inner_text()
        assert "file" in alert_row and "sent" in alert_row, alert_row
        assert QUERY_TIME in page.locator("#related-metrics").inner_text()
        assert page.locator("#trained-profile").inner_text() == f"features profile {profile_id}"
        shot(page, shots / "demo-alerted.png", full_page=True)
        page.click("#trained-profile")
        page.wait_for_url(f"**/profile/{profile_id}")
        facts = page.inner_text("#profile-facts")
        # the backfill before the first, not the 24 h asked for
        hours = float(re.search(r"([\d.]+) h of data", facts).group(1))  # type: ignore[union-attr]
        assert (
            abs(hours - (first_inj.start - (time.time() - BACKFILL_HOURS * 3600)) / 3600) < 0.2
        ), facts

        # 4. the same timeout again: silenced by ionosphere, with its reason, no alert
        repeat = settled(engine, repeat_inj, REPEAT_AT + 120, said)
        repeat_id, verdict = repeat
        steps = trail(engine, repeat_id)
        assert verdict == "not_anomalous", "\n".join(map(str, steps))
        assert [s[:2] for s in steps if s[0] == "ionosphere"] == [("ionosphere", "not_anomalous")]
        page.goto(f"{base}/anomaly/{repeat_id}")
        silenced = page.locator("#anomaly-matches").inner_text()
        assert f"profile {profile_id}" in silenced
        reason = [s[2] for s in steps if s[0] == "ionosphere"][0]
        assert reason and reason in page.inner_text("main")
        shot(page, shots / "demo-silenced.png", full_page=True)
        lines = [json.loads(x) for x in alerts.read_text().splitlines()]
        assert [x["anomaly"] for x in lines if x["metric"] == LATENCY] == [mine[0]["anomaly"]]
        assert not problems, problems
        context.close()
