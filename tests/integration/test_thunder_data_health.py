"""Thunder's data health, end to end: points through a real horizon, a metric and a
namespace that stop arriving, the events through the alert pipeline to a real webhook,
all before roomba would delete the silent series."""

from __future__ import annotations

import time

import pytest

from skyline.alerting.agent import Alerters
from skyline.alerting.thunder.data_health import DataHealth
from skyline.alerting.thunder.watch import Thunder
from skyline.events.anomaly import AnomalyEvent, read_all
from skyline.settings import SettingsError, load_settings
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for
from tests.integration.fake_services import FakeHttp
from tests.integration.horizon_fixtures import horizon_env, running_horizon, send_tcp
from tests.integration.pipeline_fixtures import pipeline_settings, running

CONF = """
[alerters]
timeout = 2.0
[alerters.webhooks.ops]
url = "{url}/hook"
[[alerts]]
pattern = "skyline.thunder"
channel = "webhook-ops"
expiration = 1
[[data_health]]
namespace = "web"
stale_after = 2
min_fraction = 0
[[data_health]]
namespace = "re:^api\\\\."
name = "api"
stale_after = 2
min_fraction = 0.6
"""


def _send(port: int, names: list[str]) -> None:
    ts = int(time.time())
    send_tcp(port, "".join(f"{n} 1.0 {ts}\n" for n in names).encode())


def test_silent_metrics_and_a_shrunk_namespace_are_alerted_before_roomba(
    make_settings, tmp_path, redis_client
) -> None:
    hook = FakeHttp()
    try:
        settings = pipeline_settings(
            make_settings, tmp_path, CONF.format(url=hook.url),
            SKYLINE__THUNDER__INTERVAL="0.1", SKYLINE__THUNDER__DATA_INTERVAL="0.3",
            SKYLINE__THUNDER__STALE_AFTER="0", SKYLINE__SKYLINE__METRICS_INACTIVE_AFTER="60",
            SKYLINE__ALERTERS__INTERVAL="0.2", **horizon_env(),
        )  # fmt: skip
        web = ["web.a", "web.b"]
        api = [f"api.{i}" for i in range(5)]
        with running_horizon(settings) as horizon, running(Thunder(settings), ready="seen"), \
                running(Alerters(settings)):  # fmt: skip
            port = horizon.listeners.ports["line_port"]
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:  # all arrive: nothing to report
                _send(port, web + api)
                time.sleep(0.5)
            assert read_all(redis_client, RedisKeys()) == []
            # web.a and three of the five api metrics stop; the rest keep arriving.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                _send(port, ["web.b", "api.0", "api.1"])
                time.sleep(0.5)
            events = {e.metric: e for e in read_all(redis_client, RedisKeys())}
            wait_for(lambda: len(hook.on("/hook")) >= 3, timeout=10)
        alerts = {r.json()["data"]["alert"]["metric"]: r.json()["data"]["alert"]
                  for r in hook.on("/hook")}  # fmt: skip
    finally:
        hook.close()
    assert set(events) == {"skyline.thunder.data.web.stale", "skyline.thunder.data.api.stale",
                           "skyline.thunder.data.api.count_drop"}  # fmt: skip
    web_stale = events["skyline.thunder.data.web.stale"]
    assert web_stale.source == "thunder" and "web.a" in web_stale.note
    assert "web.b" not in web_stale.note
    assert "api.2, api.3, api.4" in events["skyline.thunder.data.api.stale"].note
    assert events["skyline.thunder.data.api.count_drop"].value == 2.0
    assert set(alerts) == set(events), "each event was delivered by the webhook"
    assert "web.a" in alerts["skyline.thunder.data.web.stale"]["summary"]
    # Raised once each, and the silent series are still there for the user to look at.
    assert len(hook.on("/hook")) == 3
    store = TimeSeriesStore(redis_client, RedisKeys())
    assert len(store.read("web.a")) and len(store.read("api.4"))
    assert sorted(k.decode() for k in redis_client.hkeys(RedisKeys().thunder_stale())) == [
        "api.2", "api.3", "api.4", "web.a"
    ]  # fmt: skip


def test_a_metric_that_comes_back_is_reported_again_when_it_stops_again(
    make_settings, tmp_path, redis_client
) -> None:
    settings = pipeline_settings(make_settings, tmp_path, "[[data_health]]\nnamespace = \"db\"\n"
                                 "stale_after = 100\nmin_fraction = 0\n",
                                 SKYLINE__THUNDER__STALE_AFTER="0")  # fmt: skip
    keys = RedisKeys()
    store = TimeSeriesStore(redis_client, keys)
    raised: list[AnomalyEvent] = []
    health = DataHealth(settings, redis_client, keys, raised.append)
    now = 1_800_000_000
    store.append([("db.x", now - 500, 1.0), ("db.y", now - 10, 1.0), ("other", now - 9999, 1.0)])
    assert [e.metric for e in health.check(now)] == ["skyline.thunder.data.db.stale"]
    assert health.check(now + 1) == [], "raised once while it stays silent"
    # A restarted thunder knows what it already reported (kept in Redis).
    assert DataHealth(settings, redis_client, keys, raised.append).check(now + 2) == []
    store.append([("db.x", now + 3, 2.0)])
    assert health.check(now + 4) == [] and not redis_client.hexists(keys.thunder_stale(), "db.x")
    events = health.check(now + 3 + 101)
    assert [e.metric for e in events] == ["skyline.thunder.data.db.stale"]
    assert "db.x" in events[0].note and "db.y" in events[0].note
    assert "other" not in events[0].note, "no rule, and the catch-all is off here"
    assert len(raised) == 2


def test_the_catch_all_watches_every_metric_but_skylines_own(make_settings, redis_client) -> None:
    settings = make_settings(SKYLINE__THUNDER__STALE_AFTER="600")
    keys = RedisKeys()
    store = TimeSeriesStore(redis_client, keys)
    now = 1_800_000_000
    store.append([("app.q", now - 700, 1.0), ("skyline.horizon.h.runs", now - 700, 1.0)])
    [event] = DataHealth(settings, redis_client, keys, lambda e: None).check(now)
    assert event.metric == "skyline.thunder.data.all.stale"
    assert "app.q" in event.note and "skyline.horizon" not in event.note


@pytest.mark.parametrize(
    "conf, problem",
    [
        ('[[data_health]]\nnamespace = "web"\nstale_after = 90000\n', "metrics_inactive_after"),
        ("[thunder]\nstale_after = 82800\n", "metrics_inactive_after"),
        (
            "[skyline]\nmetrics_inactive_after = 600\n[thunder]\nstale_after = 600\n",
            "metrics_inactive_after",
        ),
        ('[[data_health]]\nnamespace = "re:^a"\n', "needs a name"),
        ('[[data_health]]\nnamespace = "re:("\nname = "x"\n', "bad regular expression"),
        ('[[data_health]]\nnamespace = "web"\nname = "a b"\n', "name 'a b'"),
        ('[[data_health]]\nnamespace = ""\n', "must not be empty"),
    ],
)
def test_bad_data_health_settings_are_refused(tmp_path, conf: str, problem: str) -> None:
    path = tmp_path / "skyline.conf"
    path.write_text(conf)
    with pytest.raises(SettingsError, match=problem):
        load_settings(path, env={})


def test_the_automatic_catch_all_fits_a_short_metrics_inactive_after(tmp_path) -> None:
    """-1 (the default) is 3600 s, or half of metrics_inactive_after when that is shorter,
    so a short roomba window is accepted and still reported first."""
    from skyline.settings.thunder import catch_all_stale_after

    path = tmp_path / "skyline.conf"
    path.write_text("[skyline]\nmetrics_inactive_after = 600\n")
    settings = load_settings(path, env={})
    assert catch_all_stale_after(settings.thunder, 600) == 270
    assert catch_all_stale_after(load_settings(None, env={}).thunder, 82800) == 3600
