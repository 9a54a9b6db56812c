"""``/api/grafana/``: the JSON data source contract (simPod's ``simpod-json-datasource``
and the SimpleJson routes it grew from) over real HTTP, with an API token.

No Grafana server is installable here (Debian and npm do not ship one), so these
requests are the ones the data source documents sending, and the answers are checked
against the shapes it documents reading (docs/grafana.md says so)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests

from skyline.db import make_engine
from skyline.webapp import users
from tests.integration.test_webapp_http import EVIL, app_env  # noqa: F401


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@pytest.fixture
def grafana(app_env):  # noqa: F811
    settings, daemon, base, ids = app_env
    token = users.create_token(make_engine(settings.database_url), "admin", "grafana")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s, base + "/api/grafana", ids


def test_test_connection_needs_the_token(grafana):
    s, url, _ = grafana
    assert s.get(url + "/").status_code == 200
    assert requests.get(url + "/", timeout=10).status_code == 401
    assert requests.post(url + "/query", json={}, timeout=10).status_code == 401


def test_search_and_metrics_list_metric_names(grafana):
    s, url, _ = grafana
    names = s.post(url + "/search", json={"target": "web"}).json()
    assert names[0] == "anomalies" and "web.latency" in names and "db.pool1.used" not in names
    options = s.post(url + "/metrics", json={}).json()
    assert {"label": "db.pool1.used", "value": "db.pool1.used"} in options
    assert s.post(url + "/metric-payload-options", json={}).json() == []
    variable = s.post(url + "/variable", json={"payload": {"target": "db.pool*"}}).json()
    assert len(variable) == 6 and variable[0].keys() == {"__text", "__value"}


def test_query_returns_datapoints_in_milliseconds_and_anomalies_as_a_table(grafana):
    s, url, ids = grafana
    now = time.time()
    body = {"range": {"from": _iso(now - 3600), "to": _iso(now + 60), "raw": {"from": "now-1h"}},
            "interval": "30s", "intervalMs": 30000, "maxDataPoints": 500,
            "targets": [{"target": "web.latency", "refId": "A", "type": "timeserie"},
                        {"target": "anomalies:web.*", "refId": "B", "type": "table"}]}  # fmt: skip
    series, table = s.post(url + "/query", json=body).json()
    assert series["target"] == "web.latency"
    times = [t for _, t in series["datapoints"]]
    assert times == sorted(times) and 59 <= len(times) <= 61
    assert all(now * 1000 - 3600_000 - 1000 <= t <= now * 1000 + 60_000 for t in times)
    assert [v for v, t in series["datapoints"] if t == ids["spike_ts"] * 1000] == [900.0]
    assert [c["text"] for c in table["columns"]][:2] == ["Time", "metric"]
    assert [r[0] for r in table["rows"]] == [ids["spike_ts"] * 1000]
    epoch_ms = {**body, "range": {"from": int((now - 3600) * 1000), "to": int(now * 1000) + 60000}}
    assert s.post(url + "/query", json=epoch_ms).json()[0] == series


def test_annotations_are_the_anomalies_in_the_range_with_a_link(grafana):
    s, url, ids = grafana
    now = time.time()
    body = {"range": {"from": _iso(now - 86400), "to": _iso(now)},
            "annotation": {"name": "Skyline", "enable": True, "query": "web.*"}}  # fmt: skip
    notes = s.post(url + "/annotations", json=body).json()
    assert len(notes) == 3  # the fourth web.latency anomaly is 3 days old
    first = next(n for n in notes if n["time"] == ids["spike_ts"] * 1000)
    assert first["title"] == "Skyline anomaly: web.latency" and "alerted" in first["tags"]
    assert f'/anomaly/{ids["a0"]}">open in Skyline</a>' in first["text"]
    assert first["annotation"]["name"] == "Skyline"
    everything = s.post(url + "/annotations", json={**body, "annotation": {"query": ""}}).json()
    evil = next(n for n in everything if EVIL in n["title"])
    assert "<script>" not in evil["text"] and "&lt;script&gt;" in evil["text"]


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/query", {"targets": []}, "range"),
        ("/query", {"range": {"from": "yesterday", "to": "now"}, "targets": []}, "range.from"),
        ("/query", {"range": {"from": 2000, "to": 1000}, "targets": []}, "after"),
        ("/query", {"range": {"from": 0, "to": 1000}, "targets": "web"}, "targets"),
        ("/query", {"range": {"from": 0, "to": 1000}, "targets": [{"target": 5}]}, "targets"),
        ("/query", {"range": {"from": 0, "to": 1}, "targets": [{"target": "x"}] * 51}, "at most"),
        ("/annotations", {"range": {"from": True, "to": 1}}, "range.from"),
        # epoch milliseconds past year 9999 overflowed SQL's integers and numpy's: a 500
        ("/annotations", {"range": {"from": 10**30, "to": 10**31}}, "range.from"),
        ("/annotations", {"range": {"from": 0, "to": 1e300}}, "range.to"),
        ("/annotations", {"range": {"from": -(10**30), "to": 0}}, "range.from"),
        ("/query", '{"range": {"from": NaN, "to": Infinity}, "targets": []}', "range.from"),
        ("/query", '{"range": {"from": 0, "to": Infinity}, "targets": []}', "range.to"),
        ("/search", [1, 2], "JSON object"),
        ("/query", "not json at all", "JSON object"),
    ],
)
def test_hostile_bodies_are_400_with_a_reason(grafana, path, body, reason):
    s, url, _ = grafana
    if isinstance(body, str):
        r = s.post(url + path, data=body, headers={"Content-Type": "application/json"})
    else:
        r = s.post(url + path, json=body)
    assert r.status_code == 400 and reason in r.json()["error"], r.text
