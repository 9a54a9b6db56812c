"""What the anomaly and profile pages say when something is missing or unusual (real
HTTP, threaded server, real Redis and SQLite): a thunder event has no series to chart
and nothing to train; an anomaly luminosity related nothing to says so and what to
check; a profile trained from a short window tells its true span of data."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import requests
from sqlalchemy.orm import Session

from skyline.db import make_engine
from skyline.db.models import Anomaly, Correlation, Metric
from skyline.events.anomaly import event_id
from skyline.webapp import users
from tests.integration.test_webapp_http import logged_in_webapp, webapp_settings


def add_anomaly(settings, metric: str, at: int, source: str = "analyzer") -> int:
    with Session(make_engine(settings.database_url)) as db:
        m = Metric(name=metric)
        db.add(m)
        db.flush()
        a = Anomaly(metric_id=m.id, timestamp=at, value=1.0, full_duration=86400, source=source,
                    algorithms_run=[], triggered_algorithms=[], scores={}, verdict="alerted",
                    event_id=event_id(source, metric, at))  # fmt: skip
        db.add(a)
        db.commit()
        return a.id


@pytest.fixture
def env(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path)
    with logged_in_webapp(settings) as (daemon, _, ids, b):
        yield settings, daemon, ids, b


def test_a_thunder_event_shows_no_chart_and_offers_no_training(env):
    settings, _, _, b = env
    now = int(time.time())
    aid = add_anomaly(settings, "skyline.thunder.analyzer.down", now, source="thunder")
    page = b.get(b.url(f"/anomaly/{aid}")).text
    assert 'id="event-only"' in page and "Skyline's own health checks" in page
    assert 'id="anomaly-chart"' not in page and 'id="train-normal"' not in page
    assert 'id="no-related"' not in page  # no series: nothing to relate either
    # the server still refuses, with its reason, a training posted anyway
    token = b.csrf(f"/anomaly/{aid}")
    r = b.post(b.url(f"/anomaly/{aid}/train"), data={"csrf_token": token})
    assert "Not trained: a thunder event" in r.text and "nothing to train" in r.text
    token = users.create_token(make_engine(settings.database_url), "admin", "ci")
    r = requests.post(b.url(f"/api/v1/anomalies/{aid}/profiles"), json={},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    assert r.status_code == 422 and "thunder event" in r.json()["error"], r.text


def test_a_metric_no_longer_stored_says_so(env):
    settings, _, _, b = env
    aid = add_anomaly(settings, "web.gone", int(time.time()) - 60)
    page = b.get(b.url(f"/anomaly/{aid}")).text
    assert 'id="no-series"' in page and 'id="train-normal"' not in page
    assert 'id="anomaly-chart"' not in page


def test_related_metrics_or_what_to_do_when_there_are_none(env):
    settings, _, ids, b = env
    page = b.get(b.url(f"/anomaly/{ids['a0']}")).text
    assert 'id="no-related"' in page and "No metric moved with this one" in page
    assert "[luminosity] threshold" in page and 'id="related-metrics"' not in page
    with Session(make_engine(settings.database_url)) as db:
        other = Metric(name="db.pool0.used")
        db.add(other)
        db.flush()
        db.add(Correlation(anomaly_id=ids["a0"], metric_id=other.id, coefficient=0.97,
                           shifted=0, shifted_coefficient=0.97))  # fmt: skip
        db.commit()
    page = b.get(b.url(f"/anomaly/{ids['a0']}")).text
    assert 'id="related-metrics"' in page and 'id="no-related"' not in page
    assert re.search(r">db\.pool0\.used</a></td><td class=\"num\">0\.970<", page)


def test_a_profile_of_a_short_window_tells_its_true_span(env):
    settings, daemon, _, b = env
    now = int(time.time()) // 60 * 60
    ts = now - 60 * np.arange(120)[::-1]  # two hours, in a window of a day
    values = 20 + np.random.default_rng(8).normal(0, 1, 120)
    values[-1] = 90.0
    daemon.store.append_grouped({"web.young": (ts.tolist(), values.tolist())})
    aid = add_anomaly(settings, "web.young", int(ts[-1]))
    token = b.csrf(f"/anomaly/{aid}")
    r = b.post(b.url(f"/anomaly/{aid}/train"), data={"csrf_token": token})
    assert "/profile/" in r.url, r.text[-2000:]
    span = re.search(r'id="profile-span">([^<]*)<', r.text).group(1)
    assert span.startswith("2.0 h of data") and "its window is 24.0 h" in span, span
