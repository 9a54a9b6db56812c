"""Slack by incoming webhook carries the graph (issue 16): the alerters store the PNG under
a capability token, the message's image block links the webapp's ``/graphs/<token>.png``,
and Slack (a local server that, like Slack, downloads the image while taking the
message) fetches it from the running webapp.  Real Redis, SQLite, sockets and daemons."""

from __future__ import annotations

import http.client
import json
import re

import pytest
import requests
from pydantic import SecretStr

from skyline.alerting.agent import Alerters
from skyline.alerting.base import Alert, DeliveryError, MemoryProgress, PermanentError
from skyline.alerting.channels import graph_link_ttl
from skyline.alerting.channels.slack import Slack, SlackChannel
from skyline.alerting.graph import render_png
from skyline.events.anomaly import publish
from skyline.settings.alerting import AlertersSection
from skyline.store import graph_images
from skyline.store.keys import RedisKeys
from skyline.webapp.agent import Webapp
from tests.conftest import free_port, wait_for
from tests.integration.fake_services import FakeHttp, Plain, Request, fake_slack
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.test_alerting import alert_rows, seed_series, verdicts

HOOK = "/hooks/T0/B0/secret"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TTL = 3600


@pytest.fixture
def slack():
    fake = fake_slack()
    yield fake
    fake.close()


@pytest.fixture
def setup(make_settings, tmp_path, slack):
    """Settings for a webhook-only Slack and a webapp on a free port; ``webapp_url`` is
    that webapp's address unless given."""

    def make(webapp_url: str | None = None, image_ttl: int = TTL):
        port = free_port()
        url = f"http://127.0.0.1:{port}" if webapp_url is None else webapp_url
        conf = f"""
[alerters]
attempts = 3
retry_backoff = 0.05
timeout = 5.0
claim_idle = 1
webapp_url = "{url}"
[alerters.slack]
webhook_url = "{slack.url}{HOOK}"
image_ttl = {image_ttl}
[[alerts]]
pattern = "web"
channel = "slack"
expiration = 3600
"""
        return pipeline_settings(make_settings, tmp_path, conf, SKYLINE__ALERTERS__INTERVAL="0.2",
                                 SKYLINE__WEBAPP__HTTP_SERVER="threaded",
                                 SKYLINE__WEBAPP__PORT=str(port),
                                 SKYLINE__WEBAPP__ADMIN_PASSWORD="correct horse battery")  # fmt: skip

    return make


def alert_through_daemon(settings, redis_client):
    """One anomaly of web.latency (with a series) through the alerters; its verdict."""
    with running(Alerters(settings)) as d:
        event = anomaly()
        seed_series(d.store, event.metric, event.timestamp)
        publish(redis_client, d.keys, event, 1000, stream=d.keys.alerts_stream())
        verdict = wait_for(lambda: [v for v in verdicts(redis_client, d.keys)
                                    if v.stage == "alerters"], timeout=20)[0]  # fmt: skip
        png = render_png(d.store.read(event.metric), event.metric, event.timestamp, event.value)
    return event, verdict, png


def graph_keys(redis_client) -> list[bytes]:
    return list(redis_client.scan_iter(match=RedisKeys("sky:").graph_image("*")))


def test_webhook_message_carries_the_graph_the_webapp_serves(setup, slack, redis_client):
    settings = setup()
    base = settings.alerters.webapp_url
    with running(Webapp(settings), ready="http"):
        event, verdict, png = alert_through_daemon(settings, redis_client)
        posts = slack.on(HOOK)
        assert verdict.verdict == "alerted" and len(posts) == 1
        body = posts[0].json()
        section, image = body["blocks"]
        assert "web.latency" in body["text"], "text stays, the notification's fallback"
        assert section == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
        assert image["type"] == "image" and image["title"]["text"] == "web.latency"
        assert image["alt_text"] == "graph of web.latency"
        assert re.fullmatch(re.escape(base) + r"/graphs/[A-Za-z0-9_-]{43}\.png", image["image_url"])
        # Slack fetched it while taking the message; fetched again, it is the same PNG
        got = requests.get(image["image_url"], timeout=5)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
        assert got.content == slack.images[0] == png, "the graph the alerter rendered"
        max_age = int(re.fullmatch(r"public, max-age=(\d+), immutable",
                                   got.headers["Cache-Control"]).group(1))  # fmt: skip
        assert 0 < max_age <= TTL
        assert "Set-Cookie" not in got.headers, "no session for a public image"
    (key,) = graph_keys(redis_client)
    assert 0 < redis_client.ttl(key) <= TTL
    (row,) = alert_rows(settings)
    assert row.status == "sent" and row.error is None


# A Redis key is set under each hostile name too (as a naive lookup would build it): the
# webapp must still answer 404, never the PNG, so no key is built from such text.
HOSTILE = [
    ("unknown token", "A" * 43),  # first: no key is planted for it
    ("one character short", "A" * 42),
    ("one character long", "A" * 44),
    ("parent directory", "../x"),
    ("encoded parent directory", "..%2Fx"),
    ("encoded parent directory, token-long", "..%2F" + "A" * 38),
    ("very long", "A" * 20000),
    ("non-url-safe characters", "A" * 40 + "$*!"),
    ("padding", "A" * 42 + "="),
    ("space", "A" * 21 + "%20" + "A" * 21),
    ("NUL", "A" * 42 + "%00"),
    ("non-ASCII", "%C3%A9" + "A" * 42),
    ("glob", "*"),
    ("markup", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
    ("empty", ""),
]


PATHS = [
    *((what, f"/graphs/{token}.png") for what, token in HOSTILE),
    ("no .png", "/graphs/" + "B" * 43),  # B...B is planted: a real token's image
    ("below a token", "/graphs/" + "B" * 43 + ".png/x"),
    ("the folder", "/graphs/"),
]


def test_unknown_and_hostile_tokens_are_404(setup, redis_client):
    settings = setup()
    keys = RedisKeys(settings.redis.prefix)
    for _, path in PATHS[1:]:  # not the first, the unknown (well-formed) token
        name = requests.utils.unquote(path.removeprefix("/graphs/"))
        for planted in {name, name.removesuffix(".png")}:
            redis_client.set(keys.graph_image(planted), PNG, ex=60)
    answers = {}
    with running(Webapp(settings), ready="http") as web:
        for what, path in PATHS:
            conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=5)
            conn.request("GET", path)  # http.client sends the path as it is (no ../ folding)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            answers[what] = (resp.status, resp.getheader("Content-Type", ""), PNG in data)
    wrong = {what: a for what, a in answers.items()
             if a[0] not in (400, 404) or a[1] == "image/png" or a[2]}  # fmt: skip
    assert wrong == {}, wrong
    assert answers["unknown token"][0] == 404


def test_an_expired_link_is_404(setup, redis_client):
    settings = setup()
    keys = RedisKeys(settings.redis.prefix)
    token = graph_images.save(redis_client, keys, PNG, ttl=1)
    with running(Webapp(settings), ready="http") as web:
        url = f"http://127.0.0.1:{web.port}/graphs/{token}.png"
        first = requests.get(url, timeout=5)
        assert first.status_code == 200 and first.content == PNG
        wait_for(lambda: requests.get(url, timeout=5).status_code == 404, timeout=10)


def test_slack_that_cannot_fetch_the_image_gets_the_text_alone(setup, slack, redis_client):
    """webapp_url set, but Slack cannot reach it (nothing listens there): Slack answers
    400 invalid_blocks, the text is sent alone and the alert is delivered with a note."""
    settings = setup()  # the webapp is not started
    event, verdict, _ = alert_through_daemon(settings, redis_client)
    first, second = slack.on(HOOK)
    assert "blocks" in first.json() and "blocks" not in second.json()
    assert second.json()["text"] == first.json()["text"]
    assert verdict.verdict == "alerted" and verdict.detail["channels"] == {"slack": "sent"}
    (row,) = alert_rows(settings)
    assert row.status == "sent"
    assert row.error.startswith("message posted; graph not attached: Slack webhook HTTP 400 "
                                "invalid_blocks")  # fmt: skip


def test_a_retry_after_invalid_blocks_sends_the_text_alone():
    """The text-only re-send fails (503) once: the retry does not try the image again."""
    answers = iter([(400, "invalid_blocks"), (503, "service unavailable"), (200, "ok")])
    fake = FakeHttp({HOOK: Plain(lambda fake, request: next(answers))})
    try:
        channel = Slack(SlackChannel(webhook_url=SecretStr(f"{fake.url}{HOOK}")), 5)
        alert = Alert(anomaly(), "slack", "web", 60, "http://x/anomaly/1", PNG,
                      "http://x/graphs/" + "A" * 43 + ".png")  # fmt: skip
        progress = MemoryProgress()
        with pytest.raises(DeliveryError, match="HTTP 503") as failed:
            channel.send(alert, progress)
        assert not isinstance(failed.value, PermanentError), "a 503 is retried"
        note = channel.send(alert, progress)
    finally:
        fake.close()
    sent: list[Request] = fake.on(HOOK)
    assert ["blocks" in json.loads(r.body) for r in sent] == [True, False, False]
    assert note is not None and note.startswith("message posted; graph not attached")


def test_without_webapp_url_the_text_alone_and_nothing_stored(setup, slack, redis_client):
    settings = setup(webapp_url="")
    _, verdict, _ = alert_through_daemon(settings, redis_client)
    (post,) = slack.on(HOOK)
    assert "blocks" not in post.json() and "web.latency" in post.json()["text"]
    assert verdict.verdict == "alerted" and graph_keys(redis_client) == []


@pytest.mark.parametrize(("token", "webhook", "ttl"), [
    ("", "https://hooks.example/T/B/X", 600),  # webhook only: the graph is linked
    ("xoxb-1", "https://hooks.example/T/B/X", 0),  # a token uploads the graph
    ("xoxb-1", "", 0),
    ("", "", 0),
])  # fmt: skip
def test_only_a_webhook_only_slack_links_its_graph(token, webhook, ttl):
    cfg = AlertersSection(slack=SlackChannel(token=SecretStr(token), webhook_url=SecretStr(webhook),
                                             image_ttl=600))  # fmt: skip
    assert graph_link_ttl("slack", cfg) == ttl
    assert graph_link_ttl("smtp", cfg) == 0 and graph_link_ttl("webhook-x", cfg) == 0


def test_a_graph_image_needs_a_ttl(redis_client):
    with pytest.raises(ValueError, match="TTL"):
        graph_images.save(redis_client, RedisKeys("sky:"), PNG, 0)
    assert graph_keys(redis_client) == []
