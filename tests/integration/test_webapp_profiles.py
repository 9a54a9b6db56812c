"""Features profiles in the web app over real HTTP (threaded server, real Redis and
SQLite): training from an anomaly's page, the profile and metric pages, enable /
disable / validate, the /api/v1 profile routes and their refusals."""

from __future__ import annotations

import re

import pytest
import requests

from skyline.db import make_engine
from skyline.webapp import users
from tests.integration.test_webapp_http import (
    ADMIN_PASSWORD,
    Browser,
    logged_in_webapp,
    webapp_settings,
)


@pytest.fixture
def env(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path)
    with logged_in_webapp(settings) as (daemon, base, ids, b):
        yield settings, daemon, base, ids, b


def _members(daemon) -> set[bytes]:
    return daemon.redis.smembers(daemon.keys.ionosphere_metrics())


def test_train_from_the_anomaly_page_then_disable_and_validate(env):
    settings, daemon, base, ids, b = env
    page = b.get(b.url(f"/anomaly/{ids['a0']}")).text
    assert 'id="train-normal"' in page
    url = b.url(f"/anomaly/{ids['a0']}/train")
    assert b.post(url, data={"label": "x"}).status_code == 403  # no CSRF token
    token = b.csrf(f"/anomaly/{ids['a0']}")
    r = b.post(url, data={"csrf_token": token, "label": "nightly <b>batch</b>", "learn": "1"})
    assert r.status_code == 200 and "/profile/" in r.url
    profile_id = int(re.search(r"/profile/(\d+)", r.url).group(1))
    assert "Trained as normal: features profile" in r.text
    assert "nightly &lt;b&gt;batch&lt;/b&gt;" in r.text  # escaped, never markup
    assert 'id="profile-features"' in r.text and "learns from later anomalies" in r.text
    assert _members(daemon) == {b"web.latency"}  # routing now sends its anomalies to ionosphere
    version = int(daemon.redis.get(daemon.keys.profiles_version("web.latency")))
    # the anomaly page links the profile and offers no second training
    page = b.get(b.url(f"/anomaly/{ids['a0']}")).text
    assert f"features profile {profile_id}" in page and 'id="train-normal"' not in page
    r = b.post(url, data={"csrf_token": token})
    assert "Not trained: this anomaly is already trained" in r.text
    # the metric's page lists it with its sparkline
    page = b.get(b.url("/metrics"), params={"name": "web.latency"}).text
    assert f'data-profile="{profile_id}"' in page and "not validated" in page
    # disable: no metric has an enabled profile any more, and caches see a new version
    token = b.csrf(f"/profile/{profile_id}")
    r = b.post(b.url(f"/profile/{profile_id}/enabled"), data={"csrf_token": token, "enabled": "0"})
    assert 'id="profile-enable"' in r.text and _members(daemon) == set()
    assert int(daemon.redis.get(daemon.keys.profiles_version("web.latency"))) > version
    r = b.post(b.url(f"/profile/{profile_id}/enabled"), data={"csrf_token": token, "enabled": "1"})
    assert 'id="profile-disable"' in r.text and _members(daemon) == {b"web.latency"}
    r = b.post(b.url(f"/profile/{profile_id}/validate"), data={"csrf_token": token})
    assert "validated" in r.text and 'id="profile-validate"' not in r.text
    assert b.get(b.url("/profile/999999")).status_code == 404


def test_a_viewer_cannot_train_or_change_profiles(env):
    settings, _, base, ids, b = env
    users.add_user(make_engine(settings.database_url), "vic", "viewer password 1", "viewer")
    v = Browser(base)
    assert v.login("vic", "viewer password 1").status_code == 302
    page = v.get(v.url(f"/anomaly/{ids['a0']}")).text
    assert 'id="train-normal"' not in page
    token = v.csrf(f"/anomaly/{ids['a0']}")
    assert (
        v.post(v.url(f"/anomaly/{ids['a0']}/train"), data={"csrf_token": token}).status_code == 403
    )


def test_profile_api(env):
    settings, daemon, base, ids, _ = env
    engine = make_engine(settings.database_url)
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {users.create_token(engine, 'admin', 'ci')}"
    api = base + "/api/v1"
    r = s.post(f"{api}/anomalies/{ids['a0']}/profiles", json={"label": "deploys", "learn": False})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["metric"] == "web.latency" and p["enabled"] and p["features_count"] > 10
    assert p["anomaly_id"] == ids["a0"] and "series" not in p
    # refusals, each with a reason
    assert s.post(f"{api}/anomalies/{ids['a0']}/profiles", json={}).status_code == 409
    daemon.redis.set(daemon.keys.training_lock(ids["a2"]), "1", ex=60)  # a training in flight
    r = s.post(f"{api}/anomalies/{ids['a2']}/profiles", json={})
    assert r.status_code == 409 and "already being trained" in r.json()["error"]
    daemon.redis.delete(daemon.keys.training_lock(ids["a2"]))
    r = s.post(f"{api}/anomalies/{ids['a4']}/profiles", json={})  # 3 days old: not stored
    assert r.status_code == 422 and "no longer holds" in r.json()["error"]
    assert s.post(f"{api}/anomalies/424242/profiles", json={}).status_code == 404
    for bad in ([1], {"learn": "yes"}, {"label": 5}, {"label": "x" * 300}):
        assert s.post(f"{api}/anomalies/{ids['a2']}/profiles", json=bad).status_code == 400, bad
    assert s.post(f"{api}/anomalies/{ids['a2']}/profiles", data="{").status_code == 400
    # list, show, series
    listed = s.get(f"{api}/profiles", params={"metric": "web.latency"}).json()["data"]
    assert [x["id"] for x in listed] == [p["id"]]
    assert s.get(f"{api}/profiles").status_code == 400
    one = s.get(f"{api}/profiles/{p['id']}").json()
    assert one["features"] and one["matches"] == []
    series = s.get(f"{api}/profiles/{p['id']}/series").json()
    assert series["metric"] == "web.latency" and 1000 < len(series["data"]) <= 1440
    assert max(v for _, v in series["data"]) == 900.0  # the anomalous point is in the window
    # change: enable/disable/validate only, with types checked
    for bad in ({}, {"enabled": "no"}, {"validated": False}, {"deleted": True}):
        assert s.patch(f"{api}/profiles/{p['id']}", json=bad).status_code == 400, bad
    r = s.patch(f"{api}/profiles/{p['id']}", json={"enabled": False, "validated": True})
    assert r.status_code == 200 and not r.json()["enabled"] and r.json()["validated"]
    assert _members(daemon) == set()
    assert s.patch(f"{api}/profiles/999999", json={"enabled": True}).status_code == 404
    assert s.delete(f"{api}/profiles/{p['id']}").status_code == 204
    assert s.get(f"{api}/profiles/{p['id']}").status_code == 404
    assert s.get(f"{api}/profiles", params={"metric": "web.latency"}).json()["data"] == []
    # a deleted profile no longer blocks training the anomaly again
    assert s.post(f"{api}/anomalies/{ids['a0']}/profiles", json={}).status_code == 201
    assert ADMIN_PASSWORD  # the same admin as the pages
