"""The flux daemon as operators run it: StatsD from a real client library, gunicorn
started by ``skyline start flux`` (bin/flux.d), a taken port, Redis going away."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
import statsd

from skyline.db import make_engine, migrate
from skyline.ingest.flux.keys import add_key
from skyline.runtime import control
from tests.conftest import fail_once, wait_for
from tests.integration.test_flux_http import Flx, flux_env, now, running_flux, start_flux


def test_statsd_with_a_real_client(make_settings) -> None:
    settings, key, engine = start_flux(make_settings, SKYLINE__FLUX__STATSD_FLUSH_INTERVAL="60")
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, engine)
        client = statsd.StatsClient("127.0.0.1", daemon.ports["statsd_port"], prefix="app")
        for _ in range(3):
            client.incr("hits")
        client.incr("sampled", 1, rate=0.5)  # the client may skip it; counted x2 if sent
        client.gauge("temp", 20)
        client.gauge("temp", 5, delta=True)
        for ms in (10, 20, 30, 40):
            client.timing("db.query", ms)
        client.set("users", "alice")
        client.set("users", "bob")
        client.set("users", "alice")
        with client.pipeline() as pipe:
            pipe.incr("piped")
            pipe.gauge("other", 1.5)
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"bad line\nok:nan|g\nx:1|zz\n", ("127.0.0.1", daemon.ports["statsd_port"])
        )

        # everything in one flush interval: flush once all samples have arrived
        wait_for(lambda: daemon.counters.peek().get("statsd.samples", 0) >= 14)
        wait_for(lambda: daemon.counters.peek().get("statsd.packets", 0) >= 11)
        daemon._next_flush = 0.0

        def flushed() -> bool:
            return bool(flux.series("stats.timers.app.db.query.upper_90")) and bool(
                flux.series("stats.gauges.app.other")
            )

        wait_for(flushed, timeout=10)
        value = lambda name: flux.series(name)[-1][1]  # noqa: E731
        assert value("stats_counts.app.hits") == 3
        assert value("stats.app.hits") == pytest.approx(3 / 60)
        assert value("stats.gauges.app.temp") == 25
        assert value("stats.sets.app.users.count") == 2
        assert value("stats.timers.app.db.query.count") == 4
        assert value("stats.timers.app.db.query.mean") == 25
        assert value("stats.timers.app.db.query.lower") == 10
        assert value("stats.timers.app.db.query.upper") == 40
        assert value("stats.timers.app.db.query.upper_90") == 40
        assert value("stats_counts.app.piped") == 1
        counts = daemon.counters.peek()
        assert counts["statsd.rejected.no_value"] == 1
        assert counts["statsd.rejected.value_not_finite"] == 1
        assert counts["statsd.rejected.unknown_type"] == 1


def test_redis_outage_is_503_then_recovers(make_settings, private_redis) -> None:
    settings, key, engine = start_flux(make_settings, SKYLINE__REDIS__URL=private_redis.url)
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, engine)
        body = {"metric": "m", "timestamp": int(time.time()), "value": 1}
        assert flux.post("/flux/metric_data_post", body).status_code == 204
        private_redis.stop()
        r = flux.post("/flux/metric_data_post", body)
        assert r.status_code == 503 and r.headers["Retry-After"]
        private_redis.start()
        wait_for(lambda: flux.post("/flux/metric_data_post", body).status_code == 204)


def test_taken_port_is_one_line_naming_the_key(make_settings) -> None:
    env = flux_env(SKYLINE__FLUX__HTTP_SERVER="gunicorn")
    settings = make_settings(**env)
    migrate.upgrade(settings.database_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env["SKYLINE__FLUX__PORT"] = str(taken.getsockname()[1])
        env.update({"SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
                    "SKYLINE__REDIS__URL": settings.redis.url})  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "skyline.ingest.flux"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "[flux] port" in lines[0] and "SKYLINE__FLUX__PORT" in lines[0]


def test_skyline_start_flux_runs_gunicorn(make_settings, monkeypatch) -> None:
    env = flux_env(SKYLINE__FLUX__HTTP_SERVER="gunicorn", SKYLINE__FLUX__WORKERS="1",
                   SKYLINE__FLUX__THREADS="2")  # fmt: skip
    settings = make_settings(**env)
    for k, v in {**env, "SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
                 "SKYLINE__REDIS__URL": settings.redis.url}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    migrate.upgrade(settings.database_url)
    _, key = add_key(make_engine(settings.database_url), "gu")
    control.start(settings, "flux", None)
    try:
        url = f"http://127.0.0.1:{env['SKYLINE__FLUX__PORT']}"
        wait_for(lambda: _status(url) == 204, timeout=20)
        ts = int(time.time())
        r = requests.get(f"{url}/flux/metric_data", params={"metric": "g", "timestamp": ts,
                         "value": 7}, headers={"key": key}, timeout=10)  # fmt: skip
        assert r.status_code == 204, r.text
        from skyline.store.connection import connect
        from skyline.store.keys import RedisKeys
        from skyline.store.timeseries import TimeSeriesStore

        store = TimeSeriesStore(connect(settings), RedisKeys(settings.redis.prefix))
        assert store.read("gu.g").pairs() == [[ts, 7.0]]
        [st] = control.status(settings, ["flux"])
        assert st.state == "running"
    finally:
        assert control.stop(settings, "flux")
    assert _status(url) is None  # gunicorn went with the daemon


def _status(url: str) -> int | None:
    try:
        return requests.get(f"{url}/flux/metric_data?status=true", timeout=2).status_code
    except (requests.ConnectionError, requests.Timeout):  # not up yet (a slow, loaded machine)
        return None


def test_a_request_past_its_time_limit_is_503_and_stores_nothing(make_settings) -> None:
    """The soft limit: parsing loops look at the clock (skyline.ingest.flux.deadline).
    A limit of a microsecond is past at the first look."""
    settings, key, _ = start_flux(make_settings, SKYLINE__FLUX__REQUEST_TIME_LIMIT="0.000001")
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, None)
        metrics = [{"metric": f"slow.{i}", "timestamp": now(), "value": i} for i in range(300)]
        r = flux.post("/flux/metric_data_post", {"metrics": metrics})
        assert r.status_code == 503 and r.json()["reason"] == "time_limit", r.text
        assert int(r.headers["Retry-After"]) >= 1
        lines = "\n".join(f"slow_i{i} v=1 {now()}" for i in range(10)).encode()
        r = flux.post("/flux/influx/write?precision=s", data=lines)
        assert r.status_code == 503 and r.json()["reason"] == "time_limit", r.text
        assert not [m for m in flux.daemon.store.metrics() if m.startswith("tenant.slow")]
        assert flux.daemon.counters.peek()["refused.time_limit"] == 2


def test_a_gunicorn_worker_stuck_past_twice_the_limit_is_replaced(
    make_settings, monkeypatch
) -> None:
    """The hard limit: json.loads of a 16 MB body cannot look at a clock; the worker's
    watchdog ends it at twice the limit, gunicorn starts another, and flux answers again."""
    # A hard limit of 0.2 s: the 16 MB json.loads takes longer (0.6 s on the 2-core test
    # machine), while an ordinary request on a loaded machine stays well within it
    env = flux_env(SKYLINE__FLUX__HTTP_SERVER="gunicorn", SKYLINE__FLUX__WORKERS="1",
                   SKYLINE__FLUX__THREADS="2", SKYLINE__FLUX__REQUEST_TIME_LIMIT="0.1")  # fmt: skip
    settings = make_settings(**env)
    for k, v in {**env, "SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
                 "SKYLINE__REDIS__URL": settings.redis.url}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    migrate.upgrade(settings.database_url)
    _, key = add_key(make_engine(settings.database_url), "gu")
    control.start(settings, "flux", None)
    url = f"http://127.0.0.1:{env['SKYLINE__FLUX__PORT']}"
    try:
        wait_for(lambda: _status(url) == 204, timeout=30)
        big = b'{"metrics": [' + b",".join([b"[1.5, 2.5, 3.5]"] * 1_000_000) + b"]}"
        body = gzip.compress(big)
        # json.loads holds the GIL, so the watchdog runs only once it returns. The
        # request thread then reaches the soft limit's check at the same moment: the
        # worker exits before the answer is sent, while it is sent, or (the watchdog's
        # log write lets the request thread run) just after a whole refusal went out: the
        # 413 of its 1,000,000 datapoints (the count is checked before the parsing loop
        # looks at the clock) or the 503 of the soft limit. In every case nothing was
        # stored and the client was not told 2xx.
        try:
            r = requests.post(f"{url}/flux/metric_data_post", data=body, timeout=60,
                              headers={"key": key, "Content-Encoding": "gzip"})  # fmt: skip
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            pass
        else:
            refusals = {(413, "too_many_metrics"), (503, "time_limit")}
            assert (r.status_code, r.json()["reason"]) in refusals, r.text
        logs = settings.var_path / "log"
        wait_for(lambda: "over twice [flux] request_time_limit" in
                 (logs / "flux.log").read_text(), timeout=30)  # fmt: skip
        wait_for(lambda: "exited with code 70" in (logs / "flux-gunicorn.log").read_text(),
                 timeout=30)  # fmt: skip
        wait_for(lambda: _status(url) == 204, timeout=30)  # a fresh worker answers
        r = requests.get(f"{url}/flux/metric_data", params={"metric": "after", "timestamp":
                         int(time.time()), "value": 1}, headers={"key": key}, timeout=10)  # fmt: skip
        assert r.status_code == 204, r.text
    finally:
        assert control.stop(settings, "flux")


def test_statsd_names_too_long_to_store_take_no_room_from_good_ones(make_settings) -> None:
    """A name no flush could store is refused on arrival: as a gauge it would otherwise
    hold one of the statsd_max_metrics slots (and its bytes) for statsd_gauge_idle."""
    settings, key, engine = start_flux(make_settings, SKYLINE__FLUX__STATSD_MAX_METRICS="3")
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, engine)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = ("127.0.0.1", daemon.ports["statsd_port"])
        for i in range(3):
            udp.sendto(f"{i}{'x' * 30_000}:1|g".encode(), address)
        wait_for(lambda: daemon.counters.peek().get("statsd.packets", 0) >= 3)
        udp.sendto(b"good.gauge:7|g", address)
        wait_for(lambda: flux.series("stats.gauges.good.gauge"), timeout=10)
        assert flux.series("stats.gauges.good.gauge")[-1][1] == 7
        counts = daemon.counters.peek()
        assert counts["statsd.rejected.name_too_long"] == 3
        assert counts.get("statsd.dropped.too_many_metrics", 0) == 0


def test_a_bug_on_a_statsd_packet_drops_that_packet_only(make_settings, monkeypatch, caplog):
    """Aggregating a packet raises (a bug, forced once): that packet is dropped,
    counted and logged; the listener thread goes on and the next packet is stored."""
    settings, key, engine = start_flux(make_settings)
    with running_flux(settings) as daemon:
        flux = Flx(daemon, key, engine)
        fail_once(monkeypatch, daemon.aggregator, "add", RuntimeError("a bug in the aggregator"))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = ("127.0.0.1", daemon.ports["statsd_port"])
        udp.sendto(b"lost.gauge:1|g", address)
        wait_for(lambda: daemon.counters.peek().get("statsd.dropped.error") == 1)
        udp.sendto(b"kept.gauge:7|g", address)
        wait_for(lambda: daemon.counters.peek().get("statsd.samples") == 1)  # the kept one
        daemon._next_flush = 0.0
        wait_for(lambda: flux.series("stats.gauges.kept.gauge"), timeout=10)
        assert not flux.series("stats.gauges.lost.gauge")
        assert daemon.statsd.is_alive() and daemon.counters.peek()["errors"] == 1
        assert "a bug in the aggregator" in caplog.text
