"""The admin and reference pages in a real browser (Debian's headless Chromium via
Playwright): empty states that say what to do, one time format on a page and in its
chart, Users and API tokens (a secret shown once), a test alert delivered to a real
webhook receiver, and the API reference rendered by the vendored Swagger UI under the
app's Content-Security-Policy (a violation is a console error, which fails the test).

``SKYLINE_SCREENSHOTS=1`` writes the screenshots of docs/webapp.md to docs/img/.
"""

from __future__ import annotations

import re

from tests.e2e.browser import login, new_page, shot
from tests.integration.fake_services import FakeHttp
from tests.integration.test_webapp_admin import admin_settings, alerts_conf, fake_hook
from tests.integration.test_webapp_http import ADMIN_PASSWORD, running_webapp, seed

ISO = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def test_admin_pages_time_format_and_api_docs(browser, make_settings, tmp_path, shots):
    hook = fake_hook()
    try:
        settings = admin_settings(make_settings, tmp_path, alerts_conf(hook))
        with running_webapp(settings) as (daemon, base):
            context, page, problems = new_page(browser)
            page.goto(base + "/now")
            login(page, base, "admin", ADMIN_PASSWORD)
            page.wait_for_url("**/now")
            _empty_states(page, base)
            _live_list_says_why_it_is_stale(page, base)
            ids = seed(settings, daemon.store)
            _time_format(page, base, ids["a0"])
            _profile_and_error(page, base, shots)
            _users_and_tokens(page, base, shots)
            _test_alert(page, base, hook, shots)
            _api_docs(page, base, shots)
            context.close()
        assert not problems, problems
    finally:
        hook.close()


def _empty_states(page, base: str) -> None:
    assert page.locator("#now-empty").is_visible()
    assert "skyline demo" in page.inner_text("#now-empty")
    page.goto(base + "/anomalies")
    assert "No anomalies stored yet" in page.inner_text("#anomalies-empty")
    page.goto(base + "/anomalies?metric=web.*&since=1h")
    assert "No anomalies match these filters" in page.inner_text("#anomalies-empty")
    page.goto(base + "/metrics?q=nothing.like.this")
    assert "No metric matches" in page.inner_text("#metrics-empty")


def _live_list_says_why_it_is_stale(page, base: str) -> None:
    """The Now page's polling meets an outage (forced: the API answers 503): it says so.
    In a second tab, whose console's 503 is expected here."""
    tab = page.context.new_page()
    reason = "Redis or the database is unavailable; retry shortly."
    tab.route("**/api/v1/anomalies?*", lambda route: route.fulfill(
        status=503, content_type="application/json", body=f'{{"error": "{reason}"}}'))  # fmt: skip
    tab.goto(base + "/now")
    tab.locator("#live-time", has_text="HTTP 503").wait_for(timeout=15000)
    assert reason in tab.inner_text("#live-time")
    assert tab.locator("#live-state.stale").count() == 1
    tab.close()


def _time_format(page, base: str, anomaly_id: int) -> None:
    page.goto(base + "/now")
    cell = page.locator("#now tbody tr time").first
    assert ISO.match(cell.inner_text()), cell.inner_text()
    cell.hover()
    assert re.fullmatch(r"\d+[smhd] ago", cell.get_attribute("title"))
    page.goto(base + f"/anomaly/{anomaly_id}")
    page.wait_for_selector("#anomaly-chart[data-drawn='1'] canvas", timeout=15000)
    box = page.locator("#anomaly-chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    legend = page.locator("#anomaly-chart .u-legend .u-series").first
    assert "UTC" in legend.inner_text()
    value = legend.locator(".u-value").inner_text()
    assert ISO.match(value), value
    text = page.inner_text("main")
    assert not re.search(r"\d\s?(AM|PM|am|pm)\b", text), "a 12-hour time without a zone"


def _profile_and_error(page, base: str, shots) -> None:
    """Train the open anomaly as normal: its new profile's page; then a missing anomaly."""
    page.click("#train-normal")
    page.wait_for_url("**/profile/*", timeout=60000)
    assert "None yet" in page.inner_text("#profile-matches")
    page.wait_for_selector("#profile-chart[data-drawn='1'] canvas", timeout=15000)
    shot(page, shots / "webapp-profile.png")
    # in a second tab of the session: its console's "404" is the answer expected here
    tab = page.context.new_page()
    assert tab.goto(base + "/anomaly/987654").status == 404
    assert "No anomaly with the id or event id '987654'" in tab.inner_text("main")
    shot(tab, shots / "webapp-error.png")
    tab.close()


def _users_and_tokens(page, base: str, shots) -> None:
    page.click("header nav >> text=Users")
    page.fill("#user-add input[name=username]", "oncall")
    page.select_option("#user-add select[name=role]", "operator")
    page.click("#user-add button[type=submit]")
    password = page.inner_text("#secret-value")
    assert len(password) >= 10
    assert page.locator('#users tr[data-user="oncall"]').count() == 1
    assert page.locator("#audit tbody tr", has_text="user.create").count() == 1
    shot(page, shots / "webapp-users.png", full_page=True)
    page.click("header nav >> text=Tokens")
    page.fill("#token-add input[name=name]", "grafana")
    page.select_option("#token-add select[name=user]", "oncall")
    page.click("#token-add button[type=submit]")
    token = page.inner_text("#secret-value")
    assert token.startswith("skyt_")
    me = page.context.request.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "oncall"
    shot(page, shots / "webapp-tokens.png", full_page=True)
    page.goto(base + "/tokens")
    assert page.locator("#secret-value").count() == 0  # shown once


def _test_alert(page, base: str, hook: FakeHttp, shots) -> None:
    page.click("header nav >> text=Alerts")
    page.click('#alert-channels tr[data-channel="webhook-ops"] button')
    outcome = page.locator("#test-outcome")
    assert "delivered" in outcome.inner_text() and "not delivered" not in outcome.inner_text()
    assert len(hook.on("/hook")) == 1
    shot(page, shots / "webapp-alerts.png", full_page=True)
    page.click('#alert-channels tr[data-channel="webhook-gone"] button')
    assert "not delivered" in page.inner_text("#test-outcome")


def _api_docs(page, base: str, shots) -> None:
    page.click("header nav >> text=API")
    page.wait_for_selector("#swagger-ui .opblock", timeout=30000)
    assert page.locator("#swagger-ui .opblock").count() >= 10
    assert page.locator("#swagger-ui .opblock-summary-path", has_text="/anomalies").count() >= 1
    shot(page, shots / "webapp-api-docs.png")
    # "Try it out" with the login session: a change carries the page's CSRF token
    op = page.locator("#swagger-ui .opblock-post", has_text="/mutes")
    op.locator(".opblock-summary").click()
    op.locator("button.try-out__btn").click()
    op.locator("textarea.body-param__text").fill(
        '{"pattern": "swagger.*", "duration": "1h", "reason": "tried out"}'
    )
    op.locator("button.execute").click()
    status = op.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=15000)
    assert status.inner_text().strip().startswith("201"), status.inner_text()
