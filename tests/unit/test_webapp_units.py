"""Pure parts of the web app: filters, time parsing, LIKE escaping, redirects, users."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from skyline.db import migrate
from skyline.settings import load_settings
from skyline.webapp import queries, users
from skyline.webapp.auth import _safe_next
from skyline.webapp.queries import BadFilter, Filters, like_pattern, parse_time


@pytest.mark.parametrize(
    ("glob", "like"),
    [("web.*", "web.%"), ("a?c", "a_c"), ("latency", "%latency%"), ("100%", "%100\\%%"),
     ("a_b*", "a\\_b%"), ("x\\y", "%x\\\\y%"), ("' OR 1=1 --", "%' OR 1=1 --%")],
)  # fmt: skip
def test_like_pattern_escapes_wildcards(glob, like):
    assert like_pattern(glob) == like


def test_parse_time_forms():
    assert parse_time("1700000000", "since") == 1700000000
    assert parse_time("6h", "since", now=100000) == 100000 - 6 * 3600
    assert parse_time("2026-01-31", "since") == 1769817600
    assert parse_time("2026-01-31 00:00:00 UTC", "since") == 1769817600  # the pages' format
    assert parse_time("2026-01-31T01:00:00+01:00", "since") == 1769817600
    assert parse_time("", "since") is None
    with pytest.raises(BadFilter, match="since"):
        parse_time("yesterday'--", "since")


def test_filters_collect_errors_and_cap_page_size():
    f = Filters.from_args(MultiDict({"page": "0", "per_page": "99999", "label": "maybe",
                                     "since": "soon", "metric": "x" * 5000}), 50)  # fmt: skip
    assert f.page == 1 and f.per_page == queries.MAX_PAGE_SIZE and f.label == ""
    assert len(f.errors) == 3 and len(f.metric) == 1024
    ok = Filters.from_args(MultiDict({"daemon": "mirage", "label": "none", "page": "2"}), 20)
    assert (ok.source, ok.label, ok.page, ok.per_page, ok.errors) == ("mirage", "none", 2, 20, [])


@pytest.mark.parametrize(
    ("target", "expected"),
    [(None, "/now"), ("/anomalies?x=1", "/anomalies?x=1"), ("//evil.example", "/now"),
     ("https://evil.example/", "/now"), ("javascript:alert(1)", "/now"), ("now", "/now")],
)  # fmt: skip
def test_safe_next(target, expected):
    app = Flask("t")
    app.add_url_rule("/now", "pages.now", lambda: "")
    with app.test_request_context():
        assert _safe_next(target) == expected


@pytest.fixture
def engine_settings(tmp_path):
    settings = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path)})
    migrate.upgrade(settings.database_url)
    from skyline.db import make_engine

    return make_engine(settings.database_url), settings


def test_passwords_are_hashed_slowly_and_checked(engine_settings):
    engine, _ = engine_settings
    users.add_user(engine, "ann", "a long password", "operator")
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from skyline.db.models import User

    with Session(engine) as db:
        stored = db.scalar(select(User.password_hash))
    assert stored.startswith("scrypt:") and "a long password" not in stored
    assert users.authenticate(engine, "ann", "a long password").role == "operator"
    assert users.authenticate(engine, "ann", "wrong password") is None
    with pytest.raises(users.UserError, match="at least"):
        users.add_user(engine, "bob", "short")
    with pytest.raises(users.UserError, match="exists"):
        users.add_user(engine, "ann", "another password")
    with pytest.raises(users.UserError, match="role"):
        users.add_user(engine, "cid", "a long password", "root")
    users.set_disabled(engine, "ann", True)
    assert users.authenticate(engine, "ann", "a long password") is None


def test_tokens_are_stored_hashed_and_revocable(engine_settings):
    engine, _ = engine_settings
    users.add_user(engine, "bot", "a long password")
    token = users.create_token(engine, "bot", "ci")
    assert re.fullmatch(r"skyt_[A-Za-z0-9_-]{40,}", token)
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from skyline.db.models import ApiToken

    with Session(engine) as db:
        assert token not in db.scalar(select(ApiToken.token_hash))
    who = users.token_principal(engine, token)
    assert who.username == "bot" and who.token_id is not None and not who.can("operator")
    assert users.token_principal(engine, token + "x") is None
    assert users.revoke_token(engine, "bot", who.token_id)
    assert users.token_principal(engine, token) is None


def test_ensure_admin_once_and_secret_key_kept(engine_settings):
    engine, settings = engine_settings
    password = users.ensure_admin(engine, settings)
    assert password and users.admin_password_file(settings).read_text().strip() == password
    assert users.ensure_admin(engine, settings) is None
    users.forget_admin_password(settings, "admin")
    assert not users.admin_password_file(settings).exists()
    key = users.secret_key(settings)
    assert len(key) == 32 and users.secret_key(settings) == key


def test_verdict_trail_follows_the_detecting_daemon():
    from skyline.webapp.queries import trail

    verdicts = [{"stage": "analyzer", "verdict": "sent_to_mirage"},
                {"stage": "mirage", "verdict": "not_anomalous"}]  # fmt: skip
    steps = trail({"source": "analyzer", "verdicts": verdicts})
    assert [s["stage"] for s in steps] == ["analyzer", "mirage", "ionosphere", "alerters"]
    assert [bool(s["step"]) for s in steps] == [True, True, False, False]
    assert steps[1]["step"]["verdict"] == "not_anomalous"
    boundary = trail({"source": "boundary", "verdicts": [
        {"stage": "boundary", "verdict": "sent_to_alerters"}, {"stage": "alerters", "verdict": "alerted"}]})  # fmt: skip
    assert [(s["stage"], s["step"]["verdict"]) for s in boundary] == [
        ("boundary", "sent_to_alerters"), ("alerters", "alerted")]  # fmt: skip
