"""Issue 16 (webapp): graph ranges in the URL, graph markers, the metric browser, the
anomaly-rate ranking and paging, over real HTTP (threaded server, Redis, SQLite), with
hostile query parameters: every bad one is a 400 that says what was wrong."""

from __future__ import annotations

import re
import time

import pytest
import requests

from skyline.db import make_engine
from skyline.webapp import users
from tests.integration import conftest_db
from tests.integration.test_webapp_http import (
    ODD_NUMBERS,
    SQL_INJECTIONS,
    Browser,
    running_webapp,
    seed,
    webapp_settings,
)

db_url = conftest_db.db_url  # the SQL-heavy tests run on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url


@pytest.fixture
def env(make_settings, tmp_path):
    yield from _env(webapp_settings(make_settings, tmp_path))


@pytest.fixture
def env_db(make_settings, tmp_path, db_url):
    yield from _env(webapp_settings(make_settings, tmp_path, SKYLINE__DATABASE__URL=db_url))


def _env(settings):
    with running_webapp(settings) as (daemon, base):
        ids = seed(settings, daemon.store)
        now = float(int(time.time()))
        daemon.store.append_grouped({f"skyline.horizon.h1.counter{i}": ([now], [float(i)])
                                     for i in range(4)})  # fmt: skip
        b = Browser(base)
        assert b.login().status_code == 302
        token = users.create_token(make_engine(settings.database_url), "admin", "t")
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        yield b, api, base, ids


def _reason(r: requests.Response) -> str:
    return r.json()["error"] if r.headers["Content-Type"].startswith("application/json") else r.text


BAD_RANGES = [
    ({"from": "yesterday"}, "from: 'yesterday' is not epoch seconds"),
    ({"from": "2h", "until": "3h"}, "from: must be before until"),
    ({"from": "1000d"}, "at most 400 days"),
    ({"until": "9" * 30}, "until:"),
    ({"from": "0", "until": "0"}, "before until"),
    ({"from": "\x00"}, "from:"),
]


@pytest.mark.parametrize("path", ["/metrics?name=web.latency", "/ranking", "/anomaly/{a0}"])
def test_bad_graph_ranges_on_pages_are_400_with_the_reason(env, path):
    b, _, _, ids = env
    for params, reason in BAD_RANGES:
        r = b.get(b.url(path.format(**ids)), params=params)
        assert r.status_code == 400, (path, params)
        assert reason in r.text.replace("&#39;", "'"), (path, params, r.text[-400:])


def test_a_range_in_the_url_reaches_the_graph_and_the_picker(env):
    b, _, _, ids = env
    page = b.get(b.url("/metrics"), params={"name": "web.latency", "from": "1000", "until": "5000"})
    assert page.status_code == 200
    assert 'data-from="1000" data-until="5000"' in page.text
    assert 'value="1970-01-01 00:16:40 UTC"' in page.text  # the custom-range input
    # the input shows the pages' one time format, and Apply reads it back
    page = b.get(b.url("/metrics"), params={"name": "web.latency", "from": "1970-01-01 00:16:40 UTC",
                                            "until": "5000"})  # fmt: skip
    assert 'data-from="1000" data-until="5000"' in page.text
    assert "Reset zoom</a>" in page.text and "hidden>Reset" not in page.text
    # presets are relative links (a shared link shows the same recent window)
    assert "name=web.latency&amp;from=6h" in page.text
    # on an anomaly the presets are around its time
    page = b.get(b.url(f"/anomaly/{ids['a0']}"))
    at = ids["spike_ts"]
    assert f"from={at - 3600}&amp;until={at + 600}" in page.text
    assert f'data-from="{at - 21600}" data-until="{at + 3600}"' in page.text


def test_series_with_marks_has_the_anomalies_and_alerts_in_the_range(env_db):
    _, api, base, ids = env_db
    body = api.get(base + "/api/v1/metrics/web.latency", params={"from": "1d", "marks": "1"}).json()
    assert [a["id"] for a in body["anomalies"]] == [ids["a3"], ids["a2"], ids["a0"]]  # oldest first
    assert body["anomalies"][-1]["verdict"] == "alerted"
    assert [(a["anomaly_id"], a["channel"], a["status"]) for a in body["alerts"]] == [
        (ids["a0"], "slack", "sent")
    ]
    narrow = api.get(base + "/api/v1/metrics/web.latency",
                     params={"from": str(ids["spike_ts"] - 60), "until": str(ids["spike_ts"] + 60),
                             "marks": "1"}).json()  # fmt: skip
    assert [a["id"] for a in narrow["anomalies"]] == [ids["a0"]]
    assert len(narrow["data"]) == 3
    assert "anomalies" not in api.get(base + "/api/v1/metrics/web.latency").json()


def test_metric_browser_tree_search_sparklines_counts_and_self_metrics(env):
    b, _, _, _ = env
    root = b.get(b.url("/metrics")).text
    user_part, _, own_part = root.partition('id="self-metrics"')
    assert re.search(r'prefix=web\.">web\.</a> <small>1 metric</small>', user_part)
    assert re.search(r'prefix=db\.">db\.</a> <small>6 metrics</small>', user_part)
    assert "skyline." not in user_part.split('id="metric-browser"')[1]
    assert re.search(r'prefix=skyline\.">skyline\.</a> <small>4 metrics</small>', own_part)
    level = b.get(b.url("/metrics"), params={"prefix": "db"}).text  # the dot is added
    assert level.count('<a href="/metrics?prefix=db.pool') == 6
    leaf = b.get(b.url("/metrics"), params={"prefix": "db.pool3."}).text
    assert 'data-metric="db.pool3.used"' in leaf
    assert "<polyline points=" in leaf  # a single point still draws a (short) sparkline
    found = b.get(b.url("/metrics"), params={"q": "latency"}).text
    row = found.split('data-metric="web.latency"')[1].split("</tr>")[0]
    assert "<polyline points=" in row
    # three anomalies in the graph window (6 h); the 3-day-old one is not counted
    assert re.search(r'metric=web.latency">3</a>', row)
    # "c" matches 2 of the user's and 4 self-metrics: the user's first, 3 a page
    mixed = b.get(b.url("/metrics"), params={"q": "c"}).text
    user_part, _, own_part = mixed.partition('id="self-metrics"')
    assert 'data-metric="web.latency"' in user_part and 'data-metric="evil.' in user_part
    assert "skyline.horizon" not in user_part
    assert own_part.count('data-metric="skyline.horizon.h1.counter') == 1
    second = b.get(b.url("/metrics"), params={"q": "c", "page": "2"}).text
    user_part, _, own_part = second.partition('id="self-metrics"')
    assert 'id="metric-list"' not in user_part
    assert own_part.count('data-metric="skyline.horizon.h1.counter') == 3


def test_metric_browser_pages_and_refuses_pages_past_the_end(env):
    b, _, _, _ = env  # page_size 3: db.pool0..5 is two pages
    first = b.get(b.url("/metrics"), params={"q": "db.pool"}).text
    assert first.count('data-metric="db.pool') == 3 and "page 1 of 2" in first
    second = b.get(b.url("/metrics"), params={"q": "db.pool", "page": "2"}).text
    assert 'data-metric="db.pool5.used"' in second
    for page, reason in [("3", "past the last page (2)"), ("9" * 40, "is not a whole number"),
                         ("-1", "is not a whole number"), ("1e3", "is not a whole number"),
                         ("٣", "is not a whole number")]:  # fmt: skip
        r = b.get(b.url("/metrics"), params={"q": "db.pool", "page": page})
        assert r.status_code == 400 and reason in r.text, page


def test_huge_page_numbers_are_400_with_the_reason(env_db):
    b, api, base, _ = env_db
    for path in ("/api/v1/anomalies", "/api/v1/metrics", "/api/v1/labels"):
        r = api.get(base + path, params={"page": "999999"})
        assert r.status_code == 400, path
        assert "past the last page" in _reason(r), path
    r = b.get(b.url("/anomalies"), params={"page": "999999"})
    assert r.status_code == 400 and "page: 999999 is past the last page (2)" in r.text


def test_ranking_by_rate_and_by_count(env_db):
    b, api, base, ids = env_db
    by_count = api.get(base + "/api/v1/ranking", params={"from": "7d", "by": "count"}).json()
    assert [(r["metric"], r["anomalies"]) for r in by_count["data"]][:1] == [("web.latency", 4)]
    by_rate = api.get(base + "/api/v1/ranking", params={"from": "7d"}).json()
    assert by_rate["by"] == "rate"
    evil, latency = by_rate["data"]
    assert (evil["anomalies"], evil["points"]) == (1, 200)  # one anomaly on 200 points
    assert (latency["anomalies"], latency["points"]) == (4, 1440)
    assert evil["rate"] == pytest.approx(1 / 200) and latency["rate"] == pytest.approx(4 / 1440)
    # the window: only the last hour holds the spike and the evil one
    hour = api.get(base + "/api/v1/ranking", params={"from": "1h", "by": "count"}).json()
    assert sorted(r["anomalies"] for r in hour["data"]) == [1, 1]
    page = b.get(b.url("/ranking"), params={"from": "7d"}).text
    assert page.index("evil.&lt;script&gt;") < page.index(">web.latency</a>")
    assert "<script>alert" not in page
    # each count links to those anomalies
    assert re.search(r'/anomalies\?metric=web.latency&amp;since=\d+&amp;until=\d+">4</a>', page)
    empty = b.get(b.url("/ranking"), params={"from": str(ids["spike_ts"] - 86400 * 30),
                                            "until": str(ids["spike_ts"] - 86400 * 29)}).text  # fmt: skip
    assert 'id="ranking-empty"' in empty and "pick a wider range" in empty
    at = ids["spike_ts"]  # a one-second window holding the spike
    tiny = b.get(b.url("/ranking"), params={"from": str(at), "until": str(at + 1)})
    assert tiny.status_code == 200 and ">web.latency</a>" in tiny.text


@pytest.mark.parametrize("params, reason", [
    ({"by": "evil"}, "by: one of rate, count"), ({"by": "rate'; DROP TABLE anomalies; --"}, "by:"),
    ({"limit": "0"}, "limit: a whole number from 1 to 500"), ({"limit": "501"}, "limit:"),
    ({"limit": "9" * 5000}, "limit:"), ({"limit": "-3"}, "limit:"), ({"from": "2029-13-45"}, "from:"),
    ({"from": "5h", "until": "6h"}, "before until"),
])  # fmt: skip
def test_ranking_hostile_parameters_are_400(env, params, reason):
    b, api, base, _ = env
    r = api.get(base + "/api/v1/ranking", params=params)
    assert r.status_code == 400 and reason in r.json()["error"]
    assert b.get(b.url("/ranking"), params=params).status_code == 400


def test_odd_values_in_every_new_parameter_are_200_or_400(env):
    b, api, base, ids = env
    failures = []
    for odd in [*ODD_NUMBERS, *SQL_INJECTIONS]:
        for key in ("from", "until", "page", "by", "limit", "prefix", "q", "marks"):
            for path in (
                "/metrics",
                "/metrics?name=web.latency",
                "/ranking",
                f"/anomaly/{ids['a0']}",
            ):
                r = b.get(b.url(path), params={key: odd})
                if r.status_code not in (200, 400, 404):
                    failures.append((path, key, odd[:30], r.status_code))
            for path in ("/api/v1/ranking", "/api/v1/anomalies"):
                r = api.get(base + path, params={key: odd, "before": odd})
                if (
                    r.status_code not in (200, 400)
                    or "error" in r.text[:20]
                    and r.status_code == 200
                ):
                    failures.append((path, key, odd[:30], r.status_code))
    assert failures == []
