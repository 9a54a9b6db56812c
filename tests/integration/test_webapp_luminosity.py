"""The anomaly page and API show the metrics luminosity stored as related (real HTTP,
real Redis and SQLite), names escaped."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.db import make_engine
from skyline.db.models import Correlation, Metric
from skyline.webapp import users
from tests.integration.test_webapp_http import (
    EVIL,
    Browser,
    running_webapp,
    seed,
    webapp_settings,
)


@pytest.fixture
def app(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path)
    with running_webapp(settings) as (daemon, base):
        ids = seed(settings, daemon.store)
        engine = make_engine(settings.database_url)
        with Session(engine) as db:
            evil = db.scalar(select(Metric.id).where(Metric.name == EVIL))
            errors = Metric(name="web.errors")
            db.add(errors)
            db.flush()
            db.add_all([
                Correlation(anomaly_id=ids["a0"], metric_id=evil, coefficient=0.93, shifted=-60,
                            shifted_coefficient=0.91),
                Correlation(anomaly_id=ids["a0"], metric_id=errors.id, coefficient=0.99,
                            shifted=0, shifted_coefficient=0.99),
            ])  # fmt: skip
            db.commit()
        yield settings, base, ids


def test_the_anomaly_page_lists_related_metrics_escaped(app):
    _, base, ids = app
    b = Browser(base)
    b.login()
    page = b.get(b.url(f"/anomaly/{ids['a0']}")).text
    assert "Related metrics" in page
    related = page[page.index('id="related-metrics"') :].split("</table>")[0]
    assert EVIL not in related and html.escape(EVIL) in related
    assert related.index("web.errors") < related.index(html.escape(EVIL))  # strongest first
    assert "/metrics?name=web.errors" in related and "-60 s" in related and "0.930" in related
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', related)]
    assert [parse_qs(urlsplit(h).query)["name"] for h in hrefs] == [["web.errors"], [EVIL]]
    other = b.get(b.url(f"/anomaly/{ids['a1']}")).text
    assert 'id="related-metrics"' not in other  # none: the empty state says what to check
    assert 'id="no-related"' in other and "[luminosity] namespaces" in other


def test_the_api_includes_correlations(app):
    settings, base, ids = app
    token = users.create_token(make_engine(settings.database_url), "admin", "ci")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    detail = s.get(base + f"/api/v1/anomalies/{ids['a0']}").json()
    assert detail["correlations"] == [
        {"metric": "web.errors", "coefficient": 0.99, "shift_seconds": 0,
         "shifted_coefficient": 0.99},
        {"metric": EVIL, "coefficient": 0.93, "shift_seconds": -60, "shifted_coefficient": 0.91},
    ]  # fmt: skip
    assert s.get(base + f"/api/v1/anomalies/{ids['a1']}").json()["correlations"] == []
