"""The admin pages over real HTTP (threaded server, real Redis and SQLite): Users and API
tokens (admin only, CSRF, audited, a secret shown once), the Alerts page's test alert
through a real webhook receiver, and /api/docs with the vendored Swagger UI."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.db import make_engine
from skyline.db.models import AuditEntry
from skyline.webapp import users
from tests.conftest import free_port
from tests.integration import conftest_db
from tests.integration.fake_services import FakeHttp
from tests.integration.pipeline_fixtures import pipeline_settings
from tests.integration.test_webapp_http import ADMIN_PASSWORD, Browser, running_webapp

EVIL = '<script>alert("x")</script>'
db_url = conftest_db.db_url  # the tests of admin_env run on SQLite and on MariaDB
mysql_url = conftest_db.mysql_url


def admin_settings(make_settings, tmp_path, conf: str = "", **env: str):
    return pipeline_settings(make_settings, tmp_path, conf, **{
        "SKYLINE__WEBAPP__HTTP_SERVER": "threaded", "SKYLINE__WEBAPP__PORT": str(free_port()),
        "SKYLINE__WEBAPP__ADMIN_PASSWORD": ADMIN_PASSWORD, **env})  # fmt: skip


@pytest.fixture
def admin_env(make_settings, tmp_path, db_url):
    settings = admin_settings(make_settings, tmp_path, SKYLINE__DATABASE__URL=db_url)
    with running_webapp(settings) as (_, base):
        yield settings, base


def audit_rows(settings) -> list[tuple[str, str, str]]:
    with Session(make_engine(settings.database_url)) as db:
        rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.target) for r in rows]


def secret(page: str) -> str:
    return re.search(r'<code id="secret-value">([^<]+)</code>', page).group(1)


def post(b: Browser, path: str, page: str, **data: str) -> requests.Response:
    return b.post(b.url(path), data={"csrf_token": b.csrf(page), **data})


def user_id(settings, name: str) -> int:
    return next(u["id"] for u in users.list_users(make_engine(settings.database_url))
                if u["username"] == name)  # fmt: skip


def test_an_admin_creates_rotates_and_disables_a_user(admin_env):
    settings, base = admin_env
    b = Browser(base)
    b.login()
    r = post(b, "/users", "/users", username="alice", role="operator")
    assert r.status_code == 200 and "shown once" in r.text
    password = secret(r.text)
    alice = Browser(base)
    assert alice.login("alice", password).status_code == 302
    assert alice.get(alice.url("/now")).status_code == 200
    # the page shown again does not show the password again
    assert password not in b.get(b.url("/users")).text
    uid = user_id(settings, "alice")
    r = post(b, f"/users/{uid}", "/users", action="password")
    new = secret(r.text)
    assert new != password
    assert alice.get(alice.url("/now"), allow_redirects=False).status_code == 302  # session over
    assert Browser(base).login("alice", password).status_code == 401
    assert Browser(base).login("alice", new).status_code == 302
    r = post(b, f"/users/{uid}", "/users", action="role", role="viewer")
    assert r.status_code == 200 and 'data-user="alice"' in r.text
    r = post(b, f"/users/{uid}", "/users", action="disable")
    assert r.status_code == 200
    assert Browser(base).login("alice", new).status_code == 401
    post(b, f"/users/{uid}", "/users", action="enable")
    assert Browser(base).login("alice", new).status_code == 302
    # the admin rotates their own password and stays logged in
    me = user_id(settings, "admin")
    r = post(b, f"/users/{me}", "/users", action="password")
    assert r.status_code == 200 and b.get(b.url("/users")).status_code == 200
    assert Browser(base).login("admin", secret(r.text)).status_code == 302
    assert audit_rows(settings) == [
        ("admin", "user.create", "alice"), ("admin", "user.password", "alice"),
        ("admin", "user.role", "alice"), ("admin", "user.disable", "alice"),
        ("admin", "user.enable", "alice"), ("admin", "user.password", "admin"),
    ]  # fmt: skip
    page = b.get(b.url("/users")).text
    assert page.count("user.password") == 2 and "secret-value" not in page
    with Session(make_engine(settings.database_url)) as db:
        details = " ".join(r.detail or "" for r in db.scalars(select(AuditEntry)))
    assert password not in details and new not in details


def test_an_admin_creates_rotates_and_revokes_tokens(admin_env):
    settings, base = admin_env
    b = Browser(base)
    b.login()
    r = post(b, "/tokens", "/tokens", user="admin", name="grafana")
    assert r.status_code == 200
    token = secret(r.text)
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(base + "/api/v1/me", headers=auth).json()["username"] == "admin"
    tid = users.all_tokens(make_engine(settings.database_url))[0]["id"]
    r = post(b, f"/tokens/{tid}", "/tokens", action="rotate")
    rotated = secret(r.text)
    assert requests.get(base + "/api/v1/me", headers=auth).status_code == 401
    auth = {"Authorization": f"Bearer {rotated}"}
    assert requests.get(base + "/api/v1/me", headers=auth).status_code == 200
    listed = users.all_tokens(make_engine(settings.database_url))
    assert [(t["name"], t["revoked_at"] is None) for t in listed] == [
        ("grafana", True), ("grafana", False)]  # fmt: skip
    r = post(b, f"/tokens/{listed[0]['id']}", "/tokens", action="revoke")
    assert r.status_code == 200 and "secret-value" not in r.text
    assert requests.get(base + "/api/v1/me", headers=auth).status_code == 401
    # a revoked token cannot be rotated back to life
    r = post(b, f"/tokens/{listed[0]['id']}", "/tokens", action="rotate")
    assert r.status_code == 404 and "no active token" in r.text
    assert [a[1] for a in audit_rows(settings)] == ["token.create", "token.rotate", "token.revoke"]


def test_non_admins_get_403_with_the_reason(admin_env):
    settings, base = admin_env
    engine = make_engine(settings.database_url)
    users.add_user(engine, "oper", "operator password", "operator")
    b = Browser(base)
    b.login("oper", "operator password")
    for path in ("/users", "/tokens"):
        r = b.get(b.url(path))
        assert r.status_code == 403 and "needs the admin role" in r.text, path
    token = b.csrf("/now")
    for path, data in (("/users", {"username": "mallory", "role": "admin"}),
                       (f"/users/{user_id(settings, 'admin')}", {"action": "disable"}),
                       ("/tokens", {"user": "admin", "name": "stolen"})):  # fmt: skip
        r = b.post(b.url(path), data={"csrf_token": token, **data})
        assert r.status_code == 403 and "needs the admin role" in r.text, path
    # the nav does not offer the admin pages to an operator
    assert 'href="/users"' not in b.get(b.url("/now")).text
    # not logged in: to the login page
    r = requests.get(base + "/users", allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert audit_rows(settings) == []


def test_admin_forms_need_csrf_and_refuse_hostile_input(admin_env):
    settings, base = admin_env
    b = Browser(base)
    b.login()
    me = user_id(settings, "admin")
    for path, data in (("/users", {"username": "bob"}), (f"/users/{me}", {"action": "password"}),
                       ("/tokens", {"user": "admin", "name": "x"}), ("/tokens/1", {"action": "revoke"})):  # fmt: skip
        assert b.post(b.url(path), data=data).status_code == 403, path
        r = b.post(b.url(path), data={**data, "csrf_token": "forged"})
        assert r.status_code == 403 and "CSRF" in r.text, path
    bad_users = [("has space", "viewer"), ("", "viewer"), ("x" * 65, "viewer"), ("tab\tname", "viewer"),
                 ("carol", "root"), ("carol", "' OR 1=1 --"), ("nul\x00", "viewer")]  # fmt: skip
    for name, role in bad_users:
        r = post(b, "/users", "/users", username=name, role=role)
        assert r.status_code == 400 and "Could not create the user" in r.text, (name, role)
    # a name that is markup is a valid name, shown as text
    r = post(b, "/users", "/users", username=EVIL, role="viewer")
    assert r.status_code == 200 and "<script>alert" not in r.text
    assert "&lt;script&gt;alert" in r.text
    assert post(b, "/users", "/users", username="admin").status_code == 400  # exists already
    # no admin can lock everyone out
    r = post(b, f"/users/{me}", "/users", action="disable")
    assert r.status_code == 400 and "cannot disable yourself" in r.text
    users.add_user(make_engine(settings.database_url), "admin2", "admin2 password", "admin")
    b2 = Browser(base)
    b2.login("admin2", "admin2 password")
    post(b2, f"/users/{me}", "/users", action="disable")
    r = post(b, f"/users/{me}", "/users", action="role", role="viewer")  # b's session ended
    assert r.status_code == 200 and "Log in" in r.text
    r = post(b2, f"/users/{user_id(settings, 'admin2')}", "/users", action="role", role="viewer")
    assert r.status_code == 400
    assert post(b2, f"/users/{me}", "/users", action="explode").status_code == 400
    assert post(b2, "/users/99999999", "/users", action="enable").status_code == 404
    assert post(b2, "/users/123456789012345678901", "/users", action="enable").status_code == 404
    for name in ("", " ", "x" * 256, "bell\x07"):
        r = post(b2, "/tokens", "/tokens", user="admin2", name=name)
        assert r.status_code == 400 and "token name" in r.text, repr(name)
    r = post(b2, "/tokens", "/tokens", user="nobody", name="x")
    assert r.status_code == 400 and "no user named" in r.text
    assert post(b2, "/tokens/77", "/tokens", action="revoke").status_code == 404
    assert post(b2, "/tokens/77", "/tokens", action="<b>").status_code == 400
    actions = [a[1] for a in audit_rows(settings)]
    assert actions == ["user.create", "user.disable"], actions


def fake_hook() -> FakeHttp:
    """A webhook receiver: /hook takes alerts, /gone answers 410 (a permanent failure)."""
    return FakeHttp({"/gone": (410, {"error": "this hook is gone"})})


def alerts_conf(hook: FakeHttp) -> str:
    return f"""
[alerters]
timeout = 2.0
webapp_url = "http://skyline.example:1500"
[alerters.webhooks.ops]
url = "{hook.url}/hook"
[alerters.webhooks.gone]
url = "{hook.url}/gone"
[[alerts]]
pattern = "web"
channel = "webhook-ops"
[[alerts]]
pattern = "db"
channel = "webhook-nosuch"
"""


@pytest.fixture
def alerts_env(make_settings, tmp_path):
    """The webapp with alert rules on a real webhook receiver, and an admin logged in."""
    hook = fake_hook()
    try:
        settings = admin_settings(make_settings, tmp_path, alerts_conf(hook))
        with running_webapp(settings) as (_, base):
            b = Browser(base)
            b.login()
            yield settings, hook, b
    finally:
        hook.close()


def test_a_test_alert_is_delivered_or_says_why_not(alerts_env):
    settings, hook, b = alerts_env
    base = b.base
    page = b.get(b.url("/alerts")).text
    for name in ("webhook-ops", "webhook-gone", "webhook-nosuch"):
        assert f'data-channel="{name}"' in page, name
    r = post(b, "/alerts/test", "/alerts", channel="webhook-ops")
    assert r.status_code == 200 and "delivered" in r.text
    sent = hook.on("/hook")
    assert len(sent) == 1 and "test alert sent by admin" in sent[0].body.decode()
    r = post(b, "/alerts/test", "/alerts", channel="webhook-gone")
    assert r.status_code == 200 and "not delivered" in r.text and "410" in r.text
    r = post(b, "/alerts/test", "/alerts", channel="webhook-nosuch")
    assert "not delivered" in r.text and "[alerters.webhooks.nosuch]" in r.text
    # only configured channels; CSRF; operators only
    for hostile in ("slack", "webhook-x", EVIL, "", "a" * 5000):
        r = post(b, "/alerts/test", "/alerts", channel=hostile)
        assert r.status_code == 400 and "not a configured alert channel" in r.text
    assert b.post(b.url("/alerts/test"), data={"channel": "webhook-ops"}).status_code == 403
    users.add_user(make_engine(settings.database_url), "view", "viewer password")
    v = Browser(base)
    v.login("view", "viewer password")
    assert "testing needs the operator role" in v.get(v.url("/alerts")).text
    r = post(v, "/alerts/test", "/alerts", channel="webhook-ops")
    assert r.status_code == 403 and "needs the operator role" in r.text
    assert len(hook.on("/hook")) == 1
    assert [(a[1], a[2]) for a in audit_rows(settings)] == [
        ("alert.test", "webhook-ops"), ("alert.test", "webhook-gone"),
        ("alert.test", "webhook-nosuch")]  # fmt: skip


def test_alerts_page_without_rules_says_what_to_do(make_settings, tmp_path, db_url):
    # the embedded defaults ship the demo's rule: a file that lists no rule removes it
    settings = admin_settings(make_settings, tmp_path, "alerts = []\n",
                              SKYLINE__DATABASE__URL=db_url)  # fmt: skip
    assert settings.alerts == []
    with running_webapp(settings) as (_, base):
        b = Browser(base)
        b.login()
        page = b.get(b.url("/alerts")).text
    assert "No alert channel is configured" in page and "[[alerts]]" in page


def test_alerts_page_lists_the_rules_with_their_mirage_window(make_settings, tmp_path, db_url):
    settings = admin_settings(make_settings, tmp_path, "", SKYLINE__DATABASE__URL=db_url)
    with running_webapp(settings) as (_, base):
        b = Browser(base)
        b.login()
        page = b.get(b.url("/alerts")).text
    rules = page.split('id="alert-rules"')[1].split("</table>")[0]
    assert "^demo" in rules and "24 h in 60 s buckets" in rules  # the demo's rule


def test_api_docs_page_needs_login_and_serves_the_vendored_swagger(admin_env):
    _, base = admin_env
    r = requests.get(base + "/api/docs", allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    b = Browser(base)
    b.login()
    r = b.get(b.url("/api/docs"))
    assert r.status_code == 200 and 'id="swagger-ui"' in r.text
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        assert requests.get(base + asset).status_code == 200, asset
    assert "/static/vendor/swagger-ui-bundle.js" in r.text


def test_a_channel_that_breaks_still_gets_an_answer(alerts_env, monkeypatch):
    """A bug in a channel (forced: its send raises a RuntimeError) is the button's answer,
    with the exception named, not a bare 500."""
    from skyline.alerting.channels.webhook import Webhook

    def broken(self, alert, progress):
        raise RuntimeError("channel bug")

    monkeypatch.setattr(Webhook, "send", broken)
    _, _, b = alerts_env
    r = post(b, "/alerts/test", "/alerts", channel="webhook-ops")
    assert r.status_code == 200 and "not delivered: RuntimeError: channel bug" in r.text
