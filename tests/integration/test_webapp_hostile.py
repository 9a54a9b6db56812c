"""Hostile requests to the web app (the daemon's threaded server, real Redis and SQLite):
each is a 4xx with its reason, never a 500, and stores nothing.  Found by a hunt with
requests like these (2026-12-07): JSON nested 100,000 deep or escaping a lone surrogate,
regexes that overflow, nest 600 deep or backtrack for ever, query arguments that
``url_for`` takes as its own, non-UTF-8 Basic credentials, a non-ASCII CSRF header, a
CSV field over csv's limit."""

from __future__ import annotations

import http.client
import logging
import time
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy.orm import Session

from skyline.alerting import mutes
from skyline.db import make_engine
from skyline.db.models import AlertMute
from skyline.webapp import users
from tests.integration.test_webapp_http import logged_in_webapp, webapp_settings

NESTED = "[" * 100_000 + "]" * 100_000
SURROGATE = '"\\ud800"'  # JSON's escape of a lone surrogate: valid JSON, not UTF-8 text


def api_session(settings) -> requests.Session:
    token = users.create_token(make_engine(settings.database_url), "admin", "hostile")
    s = requests.Session()
    s.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return s


@pytest.fixture
def app(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path)
    with logged_in_webapp(settings) as (daemon, base, ids, browser):
        yield settings, daemon, base, ids, browser


def json_bodies(ids: dict[str, int]) -> list[tuple[str, str, str]]:
    label = f"/api/v1/anomalies/{ids['a0']}/labels"
    return [
        ("/api/v1/mutes", NESTED, "nested too deeply"),
        ("/api/v1/mutes", '{"pattern": ' + SURROGATE + ', "duration": "1h"}', "not UTF-8"),
        ("/api/v1/mutes", '{"pattern": "(x|x)*y", "duration": "1h"}', "too long to match"),
        ("/api/v1/mutes", '{"pattern": ".*a.*b.*c.*d", "duration": "1h"}', "too long to match"),
        ("/api/v1/mutes", '{"pattern": 5, "duration": "1h"}', "pattern"),
        ("/api/v1/mutes", "[1, 2]", "must be a JSON object"),
        ("/api/v1/mutes", "\xff\xfe", "must be a JSON object"),
        (label, '{"label": "true_positive", "note": ' + SURROGATE + "}", "not UTF-8"),
        (label, NESTED, "nested too deeply"),
        ("/api/grafana/query", '{"targets": [{"target": ' + SURROGATE + "}]}", "not UTF-8"),
        ("/api/grafana/query", NESTED, "nested too deeply"),
        ("/api/grafana/annotations", '{"annotation": {"query": ' + SURROGATE + "}}", "not UTF-8"),
    ]


def test_hostile_json_bodies_are_400_with_the_reason(app):
    settings, _, base, ids, _ = app
    api = api_session(settings)
    for path, body, reason in json_bodies(ids):
        r = api.post(base + path, data=body.encode("utf-8", "surrogateescape"))
        assert r.status_code == 400, (path, body[:40], r.status_code, r.text[:200])
        assert reason in r.json()["error"], (path, body[:40], r.json())
    assert api.get(base + "/api/v1/mutes").json()["data"] == []
    ok = api.post(base + "/api/v1/mutes", json={"pattern": "web.*", "duration": "1h"})
    assert ok.status_code == 201, ok.text


def test_a_pattern_that_is_no_regex_mutes_as_text_and_alerting_goes_on(app, caplog):
    """``a{99999999999}`` does not compile (an OverflowError, not ``re.error``): it is a
    plain pattern (a substring), as [[alerts]] patterns that are no regex are, and
    matching it raises nothing (it stopped every alert).  A costly regex stored before
    mutes were checked is ignored, and said so once."""
    settings, _, base, _, _ = app
    api = api_session(settings)
    for pattern in ("a{99999999999}", "(" * 500 + "x" + ")" * 500):
        assert api.post(base + "/api/v1/mutes", json={"pattern": pattern, "duration": "1h"}
                        ).status_code == 201  # fmt: skip
    engine = make_engine(settings.database_url)
    with Session(engine) as db:
        db.add(AlertMute(pattern="(x|x)*y", until=int(time.time()) + 3600))
        db.commit()
    muting = mutes.Mutes(engine)
    with caplog.at_level(logging.ERROR, "skyline.alerters"):
        assert muting.muted_by("x" * 40) is None  # (x|x)*y would take minutes here
        assert muting.muted_by("key.a{99999999999}.x") == "a{99999999999}"
    assert (
        "mute '(x|x)*y' is matched as text only: as a regex it could take too long" in caplog.text
    )


SELECTORS = {
    "overflow": '{a=~"a{99999999999}"}',
    "nested": '{a=~"' + "(" * 600 + ")" * 600 + '"}',
    "backtracking": '{a=~"(x|x)*y"}',
}


@pytest.mark.parametrize("selector", SELECTORS.values(), ids=SELECTORS.keys())
def test_hostile_selectors_are_400(app, selector):
    settings, _, base, _, browser = app
    r = api_session(settings).get(base + "/api/v1/metrics", params={"selector": selector})
    assert r.status_code == 400 and "regex for a" in r.json()["error"], r.text
    assert browser.get(browser.url("/metrics"), params={"selector": selector}).status_code == 400


def test_query_arguments_url_for_would_take_are_not_handed_on(app):
    settings, _, base, _, browser = app
    api = api_session(settings)
    odd = {"_method": "DELETE", "endpoint": "x", "_external": "1", "values": "v"}
    for path in ("/api/v1/anomalies", "/api/v1/metrics", "/api/v1/labels"):
        r = api.get(base + path, params={"per_page": 1, **odd})
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    nxt = api.get(base + "/api/v1/anomalies", params={"per_page": 1, **odd}).json()["next"]
    assert "page=2" in nxt and not any(k in nxt for k in odd)  # the seeded rows: 5 pages
    r = browser.get(browser.url("/anomalies"), params=odd)
    assert r.status_code == 200


def raw_get(base: str, path: str, headers: dict[str, bytes]) -> http.client.HTTPResponse:
    """A GET whose header values are raw bytes (requests would encode them)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("GET", path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    return conn.getresponse()


def test_basic_credentials_that_are_not_utf8_are_no_credentials(app):
    _, _, base, _, _ = app
    bad = {"Authorization": b"Basic \xff\xfe"}
    assert raw_get(base, "/api/v1/anomalies", bad).status == 401
    page = raw_get(base, "/metrics", bad)
    assert page.status == 302 and "/login" in page.getheader("Location")


def test_a_non_ascii_csrf_header_is_403(app):
    _, _, base, ids, browser = app
    r = browser.post(browser.url(f"/anomaly/{ids['a0']}/label"), data={"label": "true_positive"},
                     headers={"X-CSRF-Token": "jeton-é"})  # fmt: skip
    assert r.status_code == 403 and "CSRF" in r.text


def test_a_csv_field_over_the_csv_limit_is_400(app):
    _, daemon, _, _, browser = app
    token = browser.csrf("/metrics")
    r = browser.post(browser.url("/metrics/import"), data={"metric": "up.huge", "csrf_token": token},
                     files={"file": ("x.csv", "1," + "9" * 200_000 + "\n", "text/csv")})  # fmt: skip
    assert r.status_code == 400 and "not a CSV file" in r.text
    assert daemon.store.read("up.huge").timestamps.size == 0


def test_no_nesting_depth_is_a_500(app):
    """Around the depth where Python's JSON parser gives up, serialising what it parsed
    can still recurse too deep (it runs a little deeper): every depth is a 400."""
    settings, _, base, _, _ = app
    api = api_session(settings)
    for depth in range(900, 1001):
        body = '{"pattern": "web", "duration": "1h", "x": ' + "[" * depth + "]" * depth + "}"
        r = api.post(base + "/api/v1/mutes", data=body)
        assert r.status_code in (400, 201), (depth, r.status_code)
