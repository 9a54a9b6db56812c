"""Label selectors in the webapp: ``GET /api/v1/metrics?selector=`` over HTTP (hostile
selectors are 400 with the parser's reason) and the Metrics page's Labels input in
headless Chromium, on metrics whose label sets are in the label index."""

from __future__ import annotations

import time

import pytest
import requests

from skyline.db import make_engine
from skyline.store.labels import LabelIndex
from skyline.webapp import users
from tests.e2e.browser import login as _login
from tests.e2e.browser import new_page as _page
from tests.integration.test_webapp_http import ADMIN_PASSWORD, running_webapp, webapp_settings

API = "tenant.http_requests_total.code=500.instance=10_0_0_1:80.job=api"
WEB = "tenant.http_requests_total.code=200.instance=10_0_0_2:80.job=web"
DOTTED = "web.host1.requests"
LABELS = {
    API: {
        "__name__": "http_requests_total",
        "code": "500",
        "instance": "10.0.0.1:80",
        "job": "api",
    },
    WEB: {
        "__name__": "http_requests_total",
        "code": "200",
        "instance": "10.0.0.2:80",
        "job": "web",
    },
}


def seed(daemon) -> None:
    now = float(int(time.time()))
    LabelIndex(daemon.store.redis, daemon.store.keys).register(LABELS)
    daemon.store.append_grouped({m: ([now - 60, now], [1.0, 2.0]) for m in (API, WEB, DOTTED)})


@pytest.fixture
def app(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__WEBAPP__PAGE_SIZE="50")
    with running_webapp(settings) as (daemon, base):
        seed(daemon)
        yield settings, daemon, base


SELECTS = [
    ('{job="api"}', [API]),
    ('http_requests_total{code=~"5.."}', [API]),
    ('{instance="10.0.0.2:80"}', [WEB]),  # the value as sent, not the flattened one
    ("http_requests_total", [API, WEB]),
    ('{job!="api"}', [WEB, DOTTED]),
    ("web.host1.requests", [DOTTED]),  # a plain dotted name is its own __name__
    ('{__name__=~"web\\\\..*"}', [DOTTED]),
    ('{job=""}', [DOTTED]),
]

HOSTILE = [
    ('{job="api"', "expected , or }"),
    ('{code=~"5(.."}', "invalid regex for code"),
    ("{}", "empty selector"),
    ("{job=api}", "expected a quoted value"),
    ('{job="x"}} ; DROP TABLE metrics', "unexpected text after the selector"),
    ('{job="' + "a" * 5000 + '"}', "longer than 4096"),
    ('{job="\x00"}', "NUL character"),
    ("<script>alert(1)</script>", "expected a metric name or {"),
    # regexes Python's backtracking re would try for hours on each name (one request
    # would hold a worker, and the GIL, that long): refused before any name is read
    ('{__name__=~"(.*.*)*z"}', "too long to match"),
    ('{job=~"(a|aa)*b"}', "too long to match"),
    ('{__name__=~".*t.*t.*t.*t.*z"}', "too long to match"),
]


def test_api_filters_metrics_with_selectors(app) -> None:
    settings, _, base = app
    token = users.create_token(make_engine(settings.database_url), "admin", "ci")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    for selector, expected in SELECTS:
        r = s.get(base + "/api/v1/metrics", params={"selector": selector})
        assert r.status_code == 200, (selector, r.text)
        assert r.json()["data"] == sorted(expected), selector
        assert r.json()["total"] == len(expected)
    # with a name pattern as well
    both = s.get(base + "/api/v1/metrics", params={"q": "tenant.*", "selector": '{job=~".+"}'})
    assert both.json()["data"] == sorted([API, WEB])
    for selector, reason in HOSTILE:
        r = s.get(base + "/api/v1/metrics", params={"selector": selector})
        assert r.status_code == 400, (selector, r.text)
        assert reason in r.text, (selector, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
    # one metric's series carries its label set
    one = s.get(base + "/api/v1/metrics/" + API).json()
    assert one["labels"] == LABELS[API] and len(one["data"]) == 2
    assert s.get(base + "/api/v1/metrics/" + DOTTED).json()["labels"] == {"__name__": DOTTED}


def test_metrics_page_selector_in_chromium(browser, app) -> None:
    _, _, base = app
    context, page, problems = _page(browser)
    page.goto(base + "/metrics")
    _login(page, base, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/metrics")
    page.fill("#metric-selector", 'http_requests_total{code=~"5..",instance="10.0.0.1:80"}')
    page.press("#metric-selector", "Enter")
    page.wait_for_url("**/metrics?*selector=*")
    links = page.locator("#metric-list a")
    assert links.all_inner_texts() == [API]
    links.first.click()
    page.wait_for_selector("#metric-labels")
    text = page.inner_text("#metric-labels")
    assert 'instance="10.0.0.1:80"' in text and 'job="api"' in text
    # the selector survives into the metric's page and the list under it
    assert page.input_value("#metric-selector") == (
        'http_requests_total{code=~"5..",instance="10.0.0.1:80"}'
    )
    # a malformed selector: a 400 page that says why
    page.fill("#metric-selector", '{job="api"')
    with page.expect_response(lambda r: "/metrics?" in r.url) as answer:
        page.press("#metric-selector", "Enter")
    assert answer.value.status == 400
    assert "expected , or }" in page.content()
    # a hostile one is shown as text, never run
    page.goto(base + "/metrics?selector=" + requests.utils.quote("<script>alert(1)</script>"))
    assert "expected a metric name or {" in page.inner_text("body")
    context.close()
    assert not [p for p in problems if "400" not in p], problems


def test_anomaly_page_shows_the_labels(app) -> None:
    from sqlalchemy.orm import Session

    from skyline.db.models import Anomaly, Metric
    from skyline.events.anomaly import event_id
    from tests.integration.test_webapp_http import Browser

    settings, _, base = app
    now = int(time.time())
    ids = {}
    with Session(make_engine(settings.database_url)) as db:
        for name in (API, DOTTED):
            m = Metric(name=name)
            db.add(m)
            db.flush()
            a = Anomaly(metric_id=m.id, timestamp=now, value=9.0, full_duration=86400,
                        source="analyzer", algorithms_run=["grubbs"], triggered_algorithms=["grubbs"],
                        scores={}, verdict="alerted", event_id=event_id("analyzer", name, now))  # fmt: skip
            db.add(a)
            db.flush()
            ids[name] = a.id
        db.commit()
    b = Browser(base)
    assert b.login().status_code == 302
    page = b.get(f"{base}/anomaly/{ids[API]}").text
    assert 'id="anomaly-labels"' in page
    for k, v in LABELS[API].items():
        if k != "__name__":
            assert f'<code>{k}="{v}"</code>' in page, page
    assert 'id="anomaly-labels"' not in b.get(f"{base}/anomaly/{ids[DOTTED]}").text
