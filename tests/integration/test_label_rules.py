"""[[alerts]] and [[boundary]] rules that match on labels, on a real Redis: the label
set comes from the label index (values as sent), travels with the anomaly event, and
the alert text and payloads show it."""

from __future__ import annotations

import time

import pytest

from skyline.alerting.base import Alert
from skyline.alerting.channels.slack import text
from skyline.alerting.channels.webhook import payload
from skyline.analysis.boundary.agent import Boundary
from skyline.events.anomaly import AnomalyEvent, VerdictEvent, read_all
from skyline.events.routing import Heartbeats, forward
from skyline.settings import SettingsError
from skyline.store.labels import LabelIndex
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import running
from tests.integration.test_boundary import feed, history

API = "tenant.http_requests_total.code=500.instance=10_0_0_1:80.job=api"
WEB = "tenant.http_requests_total.code=500.instance=10_0_0_2:80.job=web"

ALERTS = """
[[alerts]]
pattern = "http_requests_total"
labels = '{job="api",instance=~"10\\\\.0\\\\.0\\\\.1:.*"}'
channel = "slack"
[[alerts]]
pattern = "web.host1.requests"
channel = "smtp"
"""


def settings_with(make_settings, tmp_path, conf: str):
    path = tmp_path / "skyline.conf"
    path.write_text(conf)
    return make_settings(path)


def event(metric: str) -> AnomalyEvent:
    return AnomalyEvent(metric, int(time.time()), 9.0, "analyzer", ("a", "b"), ("a", "b"))


@pytest.mark.parametrize("prefetch", [False, True], ids=["asked-per-event", "prefetched"])
def test_alert_rules_match_on_labels(make_settings, tmp_path, redis_client, prefetch) -> None:
    settings = settings_with(make_settings, tmp_path, ALERTS)
    from skyline.store.keys import RedisKeys

    keys = RedisKeys(settings.redis.prefix)
    LabelIndex(redis_client, keys).register({
        API: {"__name__": "http_requests_total", "code": "500", "instance": "10.0.0.1:80", "job": "api"},
        WEB: {"__name__": "http_requests_total", "code": "500", "instance": "10.0.0.2:80", "job": "web"},
    })  # fmt: skip
    down = Heartbeats(redis_client, keys, ttl=60)
    if prefetch:  # as the analyzer does before forwarding a batch
        down.prefetch([API, WEB, "web.host1.requests", API])
    verdicts = {}
    for metric in (API, WEB, "web.host1.requests"):
        pipe = redis_client.pipeline()
        verdicts[metric] = forward(pipe, keys, settings, event(metric), down)
        pipe.execute()
    assert verdicts[API].verdict == "sent_to_alerters"
    assert verdicts[API].detail == {"channels": ["slack"]}
    assert verdicts[WEB].verdict == "no_alert_rule"  # job=web: the selector says no
    assert verdicts["web.host1.requests"].detail == {"channels": ["smtp"]}  # dotted: unchanged
    # the events carry the label set as sent
    stored = {e.metric: e for e in read_all(redis_client, keys)}
    assert stored[API].labels["instance"] == "10.0.0.1:80"
    assert stored["web.host1.requests"].labels == {}
    alerted = [VerdictEvent.from_fields(f) for _, f in redis_client.xrange(keys.verdicts_stream())]
    assert len(alerted) == 3
    alerts = redis_client.xrange(keys.alerts_stream())
    sent = [AnomalyEvent.from_fields(f) for _, f in alerts]
    assert [e.metric for e in sent] == [API, "web.host1.requests"]
    assert sent[0].labels == {"__name__": "http_requests_total", "code": "500",
                              "instance": "10.0.0.1:80", "job": "api"}  # fmt: skip


def test_prefetched_answers_are_used_for_the_ttl_only(redis_client) -> None:
    from skyline.store.keys import RedisKeys

    keys = RedisKeys("prefetch_test")
    LabelIndex(redis_client, keys).register({API: {"__name__": "up", "job": "api"}})
    for ttl, after in ((60.0, False), (0.0, True)):
        redis_client.delete(keys.ionosphere_metrics())
        down = Heartbeats(redis_client, keys, ttl=ttl)
        down.prefetch([API, WEB])
        assert down.labels(API) == {"__name__": "up", "job": "api"}
        assert down.has_profiles(API) is False and down.has_profiles(WEB) is False
        redis_client.sadd(keys.ionosphere_metrics(), API)  # a profile trained meanwhile
        time.sleep(0.01)
        assert down.has_profiles(API) is after  # prefetched within the ttl, else asked
        assert down.has_profiles("never.prefetched") is False
    down.prefetch([])  # nothing to ask: no round trip, no error
    redis_client.delete(keys.ionosphere_metrics(), keys.labels())


def test_alerts_show_the_labels() -> None:
    labels = {"__name__": "http_requests_total", "code": "500", "job": "api"}
    e = AnomalyEvent(API, 1_700_000_000, 9.0, "analyzer", ("a",), ("a",), labels=labels)
    alert = Alert(e, "slack", "http_requests_total", 3600, "http://x/anomaly/1")
    assert alert.labels == '{code="500",job="api"}'
    assert '{code="500",job="api"}' in alert.summary()
    assert '`{code="500",job="api"}`' in text(alert)
    assert payload(alert)["data"]["alert"]["labels"] == labels
    plain = Alert(AnomalyEvent("web.x", 1, 1.0, "analyzer", ("a",), ("a",)), "slack", "p", 1, "l")
    assert plain.labels == "" and "{" not in plain.summary()


@pytest.mark.parametrize(
    ("labels", "why"),
    [('{job="api"', "expected , or }"), ('{code=~"("}', "invalid regex"), ("{}", "empty selector")],
)
def test_a_malformed_rule_selector_stops_the_settings(make_settings, tmp_path, labels, why):
    conf = f'[[alerts]]\npattern = "x"\nchannel = "slack"\nlabels = {labels!r}\n'
    with pytest.raises(SettingsError) as err:
        settings_with(make_settings, tmp_path, conf)
    assert "labels" in str(err.value) and why in str(err.value)


BOUNDARY = """
[boundary_daemon]
interval = 0.05
metrics_refresh = 0.2
[[boundary]]
pattern = "queue_depth"
labels = '{queue="orders"}'
algorithm = "greater_than"
limit = 100.0
alert_threshold = 1
channels = ["slack"]
"""


def test_boundary_rules_match_on_labels(make_settings, tmp_path) -> None:
    settings = settings_with(make_settings, tmp_path, BOUNDARY)
    orders, mail = "q.queue_depth.queue=orders", "q.queue_depth.queue=mail"
    with running(Boundary(settings), ready="watched") as d:
        index = LabelIndex(d.redis, d.keys)
        index.register({orders: {"__name__": "queue_depth", "queue": "orders"},
                        mail: {"__name__": "queue_depth", "queue": "mail"}})  # fmt: skip
        end = int(time.time()) - 600
        for m in (orders, mail):
            history(d.store, m, end)
        wait_for(lambda: set(d.watched) == {orders}, timeout=10)
        for m in (orders, mail):
            feed(d.store, m, end + 60, 500.0)
        (ev,) = wait_for(lambda: read_all(d.redis, d.keys), timeout=10)
    assert ev.metric == orders and ev.source == "boundary"
    assert ev.labels == {"__name__": "queue_depth", "queue": "orders"}
