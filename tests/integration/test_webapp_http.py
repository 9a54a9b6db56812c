"""The web app over real HTTP (the daemon's threaded server, real Redis and SQLite):
login and sessions, CSRF, roles, API tokens, pagination, filters, escaping, headers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyline.db import make_engine
from skyline.db.models import AlertLog, Anomaly, AnomalyVerdict, Metric, User
from skyline.events.anomaly import event_id
from skyline.settings import Settings
from skyline.store.timeseries import TimeSeriesStore
from skyline.webapp import users
from skyline.webapp.agent import Webapp
from tests.conftest import free_port
from tests.integration import conftest_db
from tests.integration.pipeline_fixtures import pipeline_settings, running

db_url = conftest_db.db_url  # tests that take db_url run on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url
ADMIN_PASSWORD = "correct horse battery"
EVIL = "evil.<script>alert(1)</script>"


def webapp_settings(make_settings, tmp_path, **env: str) -> Settings:
    return pipeline_settings(make_settings, tmp_path, "", **{
        "SKYLINE__WEBAPP__HTTP_SERVER": "threaded", "SKYLINE__WEBAPP__PORT": str(free_port()),
        "SKYLINE__WEBAPP__ADMIN_PASSWORD": ADMIN_PASSWORD, "SKYLINE__WEBAPP__PAGE_SIZE": "3",
        **env})  # fmt: skip


def seed(settings: Settings, store: TimeSeriesStore, now: int | None = None) -> dict[str, int]:
    """A day of web.latency with a spike, anomalies (one alerted, with its trail), an evil name."""
    now = now or int(time.time())
    ts = now - 60 * np.arange(1440)[::-1]
    values = 50 + np.random.default_rng(3).normal(0, 2, 1440)
    values[-5] = 900.0
    store.append_grouped({"web.latency": (ts.tolist(), values.tolist()),
                          EVIL: (ts[-200:].tolist(), values[-200:].tolist())})  # fmt: skip
    for i in range(6):
        store.append_grouped({f"db.pool{i}.used": ([float(now)], [1.0])})
    engine = make_engine(settings.database_url)
    ids = {}
    with Session(engine) as db:
        latency, evil = Metric(name="web.latency"), Metric(name=EVIL)
        db.add_all([latency, evil])
        db.flush()
        spike_ts = int(ts[-5])
        for n, (metric, at, verdict) in enumerate([
            (latency, spike_ts, "alerted"), (evil, now - 600, "pending"),
            (latency, now - 7200, "not_anomalous"), (latency, now - 9000, "anomalous"),
            (latency, now - 86400 * 3, "expired"),
        ]):  # fmt: skip
            a = Anomaly(metric_id=metric.id, timestamp=at, value=900.0 if n == 0 else 70.0 + n,
                        full_duration=86400, source="analyzer", host="h1",
                        algorithms_run=["grubbs", "ks_test", "histogram_bins"],
                        triggered_algorithms=["grubbs", "ks_test"],
                        scores={"grubbs": 4.2, "ks_test": 3.1, "histogram_bins": 0.4},
                        verdict=verdict, event_id=event_id("analyzer", metric.name, at))  # fmt: skip
            db.add(a)
            db.flush()
            ids[f"a{n}"] = a.id
        first = ids["a0"]
        db.add_all([
            AnomalyVerdict(anomaly_id=first, stage="analyzer", verdict="sent_to_alerters"),
            AnomalyVerdict(anomaly_id=first, stage="alerters", verdict="alerted"),
            AlertLog(event_id=event_id("analyzer", "web.latency", spike_ts), anomaly_id=first,
                     metric_id=latency.id, channel="slack", rule_pattern="web.*", status="sent"),
        ])  # fmt: skip
        db.commit()
    ids["spike_ts"] = spike_ts
    return ids


@contextmanager
def running_webapp(settings: Settings) -> Iterator[tuple[Webapp, str]]:
    with running(Webapp(settings), ready="http") as daemon:
        yield daemon, f"http://127.0.0.1:{daemon.port}"


class Browser(requests.Session):
    """A requests session that logs in through the form, like a person."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def url(self, path: str) -> str:
        return self.base + path

    def csrf(self, path: str = "/login") -> str:
        page = self.get(self.url(path)).text
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> requests.Response:
        token = self.csrf()
        return self.post(self.url("/login"), allow_redirects=False,
                         data={"username": username, "password": password, "csrf_token": token})  # fmt: skip


@contextmanager
def logged_in_webapp(settings: Settings) -> Iterator[tuple[Webapp, str, dict[str, int], Browser]]:
    """A running webapp with ``seed``'s data and a Browser logged in as the admin."""
    with running_webapp(settings) as (daemon, base):
        ids = seed(settings, daemon.store)
        b = Browser(base)
        assert b.login().status_code == 302
        yield daemon, base, ids, b


@pytest.fixture
def app_env(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path)
    with running_webapp(settings) as (daemon, base):
        ids = seed(settings, daemon.store)
        yield settings, daemon, base, ids


def test_unauthenticated_pages_redirect_and_api_is_401(app_env):
    _, _, base, ids = app_env
    for path in ["/", "/now", "/anomalies", f"/anomaly/{ids['a0']}", "/metrics", "/status"]:
        r = requests.get(base + path, allow_redirects=False)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path
    for path in ["/api/v1/anomalies", "/api/v1/metrics", "/api/v1/status", "/api/v1/mutes"]:
        r = requests.get(base + path)
        assert r.status_code == 401 and r.json()["status"] == 401, path
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = requests.get(base + "/api/v1/anomalies", headers={"Authorization": "Bearer skyt_nope"})
    assert r.status_code == 401 and "invalid" in r.json()["error"]
    assert requests.get(base + "/api/v1/openapi.json").status_code == 200


def test_login_needs_csrf_and_right_password(app_env):
    _, _, base, _ = app_env
    b = Browser(base)
    r = b.post(b.url("/login"), data={"username": "admin", "password": ADMIN_PASSWORD},
               allow_redirects=False)  # fmt: skip
    assert r.status_code == 403
    assert b.login(password="wrong password!").status_code == 401
    assert b.login(username="nobody").status_code == 401
    r = b.login()
    assert r.status_code == 302 and r.headers["Location"].endswith("/now")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert b.get(b.url("/now")).status_code == 200
    # logout needs the CSRF token too, then the session is gone
    assert b.post(b.url("/logout"), allow_redirects=False).status_code == 403
    r = b.post(b.url("/logout"), data={"csrf_token": b.csrf("/now")}, allow_redirects=False)
    assert r.status_code == 302
    assert b.get(b.url("/now"), allow_redirects=False).status_code == 302


def test_failed_logins_are_throttled_per_user_and_per_address(make_settings, tmp_path):
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__WEBAPP__LOGIN_MAX_FAILURES="3",
                               SKYLINE__WEBAPP__LOGIN_WINDOW="600")  # fmt: skip
    engine = make_engine(settings.database_url)
    with running_webapp(settings) as (daemon, base):
        users.add_user(engine, "carol", "carol's long password", "viewer")
        b = Browser(base)
        if time.time() % 600 > 570:  # counts are per fixed window: start in a fresh one
            time.sleep(600 - time.time() % 600 + 0.1)
        for _ in range(3):
            assert b.login(password="guess").status_code == 401
        # the limit is reached: even the right password is refused, unchecked
        r = b.login()
        assert r.status_code == 429 and "Too many failed logins" in r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 600
        # another user from the same address still gets in (its own count) ...
        assert b.login("carol", "carol's long password").status_code == 302
        # ... until the address's larger limit (4 x 3) is spent: 4 attempts so far
        for n in range(12 - 4):
            assert b.login(f"user{n}", "guess").status_code == 401
        assert b.login("carol", "carol's long password").status_code == 429
        # every count expires with its window (simulated here by deleting the keys)
        counts = list(daemon.redis.scan_iter(daemon.keys.login_attempts("*", "*", "*")))
        assert len(counts) >= 1 + 1 + 8  # admin, the address, user0..user7 (+ carol's 429)
        assert all(0 < daemon.redis.ttl(k) <= 1200 for k in counts)
        daemon.redis.delete(*counts)
        assert b.login().status_code == 302


def test_login_next_is_never_an_open_redirect(app_env):
    _, _, base, _ = app_env
    b = Browser(base)
    token = b.csrf()
    for target, expected in [("//evil.example/x", "/now"), ("https://evil.example/", "/now"),
                             ("/anomalies?label=none", "/anomalies?label=none")]:  # fmt: skip
        b.cookies.clear()
        token = b.csrf()
        r = b.post(b.url("/login"), allow_redirects=False, data={
            "username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token, "next": target})  # fmt: skip
        assert r.headers["Location"] == expected, target


def test_pages_show_anomalies_escaped_with_security_headers(app_env):
    _, _, base, ids = app_env
    b = Browser(base)
    b.login()
    now = b.get(b.url("/now"))
    assert now.status_code == 200
    assert "web.latency" in now.text
    order = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', now.text)]
    assert order == [ids["a0"], ids["a1"], ids["a2"], ids["a3"]]  # newest first, last 6 h
    assert EVIL not in now.text and "evil.&lt;script&gt;alert(1)&lt;/script&gt;" in now.text
    h = now.headers
    assert (
        "script-src 'self'" in h["Content-Security-Policy"]
        and "unsafe-inline" not in h["Content-Security-Policy"]
    )
    assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
    assert h["Cache-Control"] == "no-store"
    assert "<script>" not in re.sub(
        r"<script src=[^>]+></script>", "", now.text
    )  # no inline scripts
    detail = b.get(b.url(f"/anomaly/{ids['a1']}"))
    assert EVIL not in detail.text and "&lt;script&gt;" in detail.text
    metrics = b.get(b.url("/metrics"), params={"q": "evil"})
    assert EVIL not in metrics.text and "&lt;script&gt;" in metrics.text
    assert b.get(b.url("/status")).status_code == 200
    assert "webapp" in b.get(b.url("/status")).text


def test_anomaly_page_by_id_and_event_id(app_env):
    _, _, base, ids = app_env
    b = Browser(base)
    b.login()
    event = event_id("analyzer", "web.latency", ids["spike_ts"])
    by_id, by_event = b.get(b.url(f"/anomaly/{ids['a0']}")), b.get(b.url(f"/anomaly/{event}"))
    assert by_id.status_code == by_event.status_code == 200
    for text in (
        "grubbs",
        "sent to alerters",
        "alerted",
        "slack",
        "True positive",
        "anomaly-chart",
    ):
        assert text in by_event.text, text
    assert b.get(b.url("/anomaly/99999")).status_code == 404
    assert b.get(b.url("/anomaly/analyzer:1:nothing")).status_code == 404


def test_labelling_needs_csrf_and_the_operator_role(app_env):
    settings, _, base, ids = app_env
    b = Browser(base)
    b.login()
    url = b.url(f"/anomaly/{ids['a0']}/label")
    assert b.post(url, data={"label": "true_positive"}).status_code == 403  # no CSRF token
    token = b.csrf(f"/anomaly/{ids['a0']}")
    r = b.post(url, data={"label": "true_positive", "note": "<b>real</b>", "csrf_token": token})
    assert r.status_code == 200 and "Labelled true positive" in r.text
    assert "&lt;b&gt;real&lt;/b&gt;" in r.text
    assert b.post(url, data={"label": "maybe", "csrf_token": token}).status_code == 400
    listed = b.get(b.url("/anomalies"), params={"label": "true_positive"}).text
    assert f'data-id="{ids["a0"]}"' in listed
    engine = make_engine(settings.database_url)
    users.add_user(engine, "viewer1", "viewer password", "viewer")
    v = Browser(base)
    assert v.login("viewer1", "viewer password").status_code == 302
    page = v.get(v.url(f"/anomaly/{ids['a0']}")).text
    assert "needs the operator role" in page
    token = v.csrf(f"/anomaly/{ids['a0']}")
    assert v.post(url, data={"label": "false_positive", "csrf_token": token}).status_code == 403


SQL_INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE anomalies; --", '" OR 1=1 --', "%' UNION SELECT * FROM users --",
                  "1; DELETE FROM users", "\\' OR 1=1#", "web%", "_"]  # fmt: skip


def test_sql_injection_in_filters_is_harmless(app_env):
    settings, _, base, _ = app_env
    b = Browser(base)
    b.login()
    token = users.create_token(make_engine(settings.database_url), "admin", "t")
    auth = {"Authorization": f"Bearer {token}"}
    for bad in SQL_INJECTIONS:
        for key in ("metric", "daemon", "verdict", "label", "since", "page"):
            page = b.get(b.url("/anomalies"), params={key: bad})
            assert page.status_code == 200, (key, bad)
            api = requests.get(base + "/api/v1/anomalies", params={key: bad}, headers=auth)
            assert api.status_code in (200, 400), (key, bad)
            if api.status_code == 200:
                assert api.json()["total"] == 0, (key, bad)
            else:
                assert "error" in api.json()
        assert b.get(b.url("/metrics"), params={"q": bad}).status_code == 200
        assert b.get(b.url(f"/anomaly/{bad}")).status_code in (404, 400)
    with Session(make_engine(settings.database_url)) as db:
        assert db.scalar(select(func.count()).select_from(Anomaly)) == 5
        assert db.scalar(select(func.count()).select_from(User)) == 1


def test_api_with_token_pagination_filters_labels(app_env):
    settings, _, base, ids = app_env
    engine = make_engine(settings.database_url)
    token = users.create_token(engine, "admin", "ci")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    page1 = s.get(base + "/api/v1/anomalies").json()
    assert page1["total"] == 5 and page1["per_page"] == 3 and page1["pages"] == 2
    assert [a["timestamp"] for a in page1["data"]] == sorted(
        (a["timestamp"] for a in page1["data"]), reverse=True
    )
    page2 = s.get(base + page1["next"]).json()
    assert len(page2["data"]) == 2 and page2["next"] is None
    assert not {a["id"] for a in page1["data"]} & {a["id"] for a in page2["data"]}
    since = s.get(base + "/api/v1/anomalies", params={"since": "1d", "metric": "web.*"}).json()
    assert since["total"] == 3
    assert s.get(base + "/api/v1/anomalies", params={"verdict": "alerted"}).json()["total"] == 1
    assert s.get(base + "/api/v1/anomalies", params={"since": "yesterday"}).status_code == 400
    assert s.get(base + "/api/v1/anomalies", params={"after_id": 0}).json()["total"] == 5
    detail = s.get(base + f"/api/v1/anomalies/{ids['a0']}").json()
    assert [v["stage"] for v in detail["verdicts"]] == ["analyzer", "alerters"]
    assert detail["alerts"][0]["channel"] == "slack"
    r = s.post(base + f"/api/v1/anomalies/{ids['a0']}/labels", json={"label": "false_positive"})
    assert r.status_code == 201 and r.json()["label"] == "false_positive"
    assert (
        s.post(base + f"/api/v1/anomalies/{ids['a0']}/labels", json={"label": 1}).status_code == 400
    )
    assert (
        s.post(
            base + "/api/v1/anomalies/424242/labels", json={"label": "true_positive"}
        ).status_code
        == 404
    )
    labels = s.get(base + "/api/v1/labels").json()
    assert labels["data"][0]["anomaly_id"] == ids["a0"]
    assert s.get(base + "/api/v1/me").json()["token"] is True
    # metrics with their data
    names = s.get(base + "/api/v1/metrics", params={"q": "db.pool*", "per_page": 4}).json()
    assert names["total"] == 6 and len(names["data"]) == 4
    series = s.get(base + "/api/v1/metrics/web.latency", params={"from": "2h"}).json()
    assert 110 <= len(series["data"]) <= 125 and max(v for _, v in series["data"]) == 900.0
    assert s.get(base + "/api/v1/metrics/no.such.metric").status_code == 404
    evil = s.get(base + "/api/v1/metrics/" + requests.utils.quote(EVIL, safe="")).json()
    assert evil["metric"] == EVIL and len(evil["data"]) == 200
    status = s.get(base + "/api/v1/status").json()
    assert any(d["name"] == "webapp" and d["alive"] for d in status["daemons"])
    # a revoked token stops working
    tid = users.list_tokens(engine, "admin")[0]["id"]
    assert users.revoke_token(engine, "admin", tid)
    assert s.get(base + "/api/v1/anomalies").status_code == 401


def test_api_mutes_and_roles(app_env):
    settings, _, base, _ = app_env
    engine = make_engine(settings.database_url)
    users.add_user(engine, "robot", "robot password", "viewer")
    viewer = {"Authorization": "Bearer " + users.create_token(engine, "robot", "read")}
    admin = {"Authorization": "Bearer " + users.create_token(engine, "admin", "ops")}
    body = {"pattern": "web.*", "duration": "2h", "reason": "deploy"}
    assert requests.post(base + "/api/v1/mutes", json=body, headers=viewer).status_code == 403
    r = requests.post(base + "/api/v1/mutes", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["until"] > time.time() + 7000
    assert requests.post(base + "/api/v1/mutes", json={"pattern": "x", "duration": "soon"},
                         headers=admin).status_code == 400  # fmt: skip
    assert requests.post(base + "/api/v1/mutes", data="not json", headers=admin).status_code == 400
    listed = requests.get(base + "/api/v1/mutes", headers=viewer).json()["data"]
    assert [m["pattern"] for m in listed] == ["web.*"]
    assert (
        requests.delete(base + f"/api/v1/mutes/{listed[0]['id']}", headers=admin).status_code == 204
    )
    assert (
        requests.delete(base + f"/api/v1/mutes/{listed[0]['id']}", headers=admin).status_code == 404
    )
    # a browser session may call the API, but a change needs the CSRF header
    b = Browser(base)
    b.login()
    assert b.post(base + "/api/v1/mutes", json=body).status_code == 403
    r = b.post(base + "/api/v1/mutes", json=body, headers={"X-CSRF-Token": b.csrf("/now")})
    assert r.status_code == 201


def test_session_ends_after_timeout_and_password_change(app_env, monkeypatch):
    settings, _, base, _ = app_env
    b = Browser(base)
    b.login()
    assert b.get(b.url("/now"), allow_redirects=False).status_code == 200
    import skyline.webapp.auth as auth_module

    later = time.time() + settings.webapp.session_timeout + 5
    monkeypatch.setattr(auth_module.time, "time", lambda: later)
    r = b.get(b.url("/anomalies"), allow_redirects=False)
    assert r.status_code == 302 and "expired=1" in r.headers["Location"]
    monkeypatch.undo()
    b.login()
    assert b.get(b.url("/now"), allow_redirects=False).status_code == 200
    users.set_password(make_engine(settings.database_url), "admin", "a new password")
    assert b.get(b.url("/now"), allow_redirects=False).status_code == 302


def test_first_start_creates_admin_with_random_password(make_settings, tmp_path, capsys):
    settings = pipeline_settings(make_settings, tmp_path, "", SKYLINE__WEBAPP__HTTP_SERVER="threaded",
                                 SKYLINE__WEBAPP__PORT=str(free_port()))  # fmt: skip
    with running_webapp(settings) as (_, base):
        out = capsys.readouterr().out
        password = users.admin_password_file(settings).read_text().strip()
        assert f"password {password}" in out and len(password) >= 16
        assert oct(users.admin_password_file(settings).stat().st_mode)[-3:] == "600"
        assert Browser(base).login("admin", password).status_code == 302
    with running_webapp(settings):  # a second start creates nobody and prints nothing
        assert "password" not in capsys.readouterr().out
    assert [u["username"] for u in users.list_users(make_engine(settings.database_url))] == [
        "admin"
    ]


# Issue 15 item 5: odd numbers in every parameter are a 4xx, never a 500.
ODD_NUMBERS = ["²", "٣", "1²", "٣٣", "0", "-1", "+5", " 7", "1e3", "0x10", "1_000", "9" * 19,
               "9" * 20, "9" * 5000, "1" * 400 + "h", "²h", "99999999999999999w",
               "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "nan", "inf",
               "\x00", "9" * 18]  # fmt: skip


def test_odd_numbers_in_every_parameter_are_4xx(app_env):
    settings, _, base, ids = app_env
    b = Browser(base)
    b.login()
    token = users.create_token(make_engine(settings.database_url), "admin", "odd")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    failures = []
    for odd in ODD_NUMBERS:
        for key in ("since", "until", "page", "per_page", "after_id"):
            for path in ("/api/v1/anomalies", "/api/v1/labels", "/api/v1/metrics"):
                r = api.get(base + path, params={key: odd})
                if r.status_code not in (200, 400):
                    failures.append((path, key, odd[:30], r.status_code))
            r = b.get(b.url("/anomalies"), params={key: odd})
            past_end = key == "page" and r.status_code == 400 and "past the last page" in r.text
            if r.status_code != 200 and not past_end:
                failures.append(("/anomalies", key, odd[:30], r.status_code))
        for key in ("from", "until"):
            r = api.get(base + "/api/v1/metrics/web.latency", params={key: odd})
            if r.status_code not in (200, 400):
                failures.append(("/api/v1/metrics/web.latency", key, odd[:30], r.status_code))
        for path in (f"/api/v1/anomalies/{odd}", f"/api/v1/profiles/{odd}",
                     f"/api/v1/profiles/{odd}/series"):  # fmt: skip
            r = api.get(base + path)
            if not 400 <= r.status_code < 500:
                failures.append((path[:40], "path", odd[:30], r.status_code))
        r = b.get(b.url(f"/anomaly/{odd}"))
        if not 400 <= r.status_code < 500:
            failures.append(("/anomaly/", "path", odd[:30], r.status_code))
    assert failures == []
    assert api.get(base + f"/api/v1/anomalies/{ids['a0']}").status_code == 200


# Issue 15 item 6: names the database takes for "oper1" are one throttle key.
SAME_USER_SPELLINGS = ["oper1 ", "oper1  ", " oper1", "oper1\t", "oper1\n", "\toper1 "]
OTHER_SPELLINGS = ["OPER1", "oper1\u00a0x", "oper\u0131"]  # never log in as oper1


def test_a_user_name_with_spaces_is_the_same_throttle_key(make_settings, tmp_path, db_url):
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__DATABASE__URL=db_url,
                               SKYLINE__WEBAPP__LOGIN_MAX_FAILURES="3",
                               SKYLINE__WEBAPP__LOGIN_WINDOW="600")  # fmt: skip
    assert settings.database_url == db_url
    engine = make_engine(settings.database_url)
    password = "oper1's long password"
    with running_webapp(settings) as (daemon, base):
        users.add_user(engine, "oper1", password, "operator")
        for spelling in OTHER_SPELLINGS:
            assert Browser(base).login(spelling, password).status_code == 401, spelling
        assert Browser(base).login(" oper1 ", password).status_code == 302
        daemon.redis.delete(*daemon.redis.scan_iter(daemon.keys.login_attempts("*", "*", "*")))
        if time.time() % 600 > 570:  # counts are per fixed window: start in a fresh one
            time.sleep(600 - time.time() % 600 + 0.1)
        b = Browser(base)
        for _ in range(3):
            assert b.login("oper1", "guess").status_code == 401
        for spelling in SAME_USER_SPELLINGS:
            r = Browser(base).login(spelling, password)
            assert r.status_code == 429, (spelling, r.status_code)


# Issue 15 item 7: a value the database cannot compare is the request's fault (4xx).
UNCOMPARABLE = ["café", "*é*", "метрика", "☃?"]


def test_a_filter_the_database_refuses_is_400_not_503(make_settings, tmp_path, db_url):
    settings = webapp_settings(make_settings, tmp_path, SKYLINE__DATABASE__URL=db_url)
    with running_webapp(settings) as (daemon, base):
        seed(settings, daemon.store)
        token = users.create_token(make_engine(settings.database_url), "admin", "t")
        auth = {"Authorization": f"Bearer {token}"}
        b = Browser(base)
        b.login()
        for value in UNCOMPARABLE:
            r = requests.get(base + "/api/v1/anomalies", params={"metric": value}, headers=auth)
            assert r.status_code in (200, 400), (value, r.status_code)
            assert b.get(b.url("/anomalies"), params={"metric": value}).status_code in (200, 400)
        assert requests.get(base + "/api/v1/anomalies", headers=auth).json()["total"] == 5


def test_odd_mute_durations_are_400(app_env):
    settings, _, base, _ = app_env
    token = users.create_token(make_engine(settings.database_url), "admin", "mutes")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    odd = [*ODD_NUMBERS, "99999999999999999999w", "9" * 20, 10**20, -5, 0, None, [], "1y"]
    statuses = {}
    for duration in odd:
        r = api.post(base + "/api/v1/mutes", json={"pattern": "web.odd", "duration": duration})
        statuses[str(duration)[:30]] = r.status_code
    assert {k: v for k, v in statuses.items() if v not in (201, 400)} == {}
    assert statuses["99999999999999999999w"] == 400 and statuses[str(10**20)[:30]] == 400
    assert api.get(base + "/api/v1/mutes").status_code == 200
    good = api.post(base + "/api/v1/mutes", json={"pattern": "web.ok", "duration": "2h"})
    assert good.status_code == 201
