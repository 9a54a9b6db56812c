"""SIGHUP reloads a running daemon's rule tables and reopens its log; a broken file
leaves it running on the settings it had (issue 15 item 12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for


def _log(var) -> str:  # noqa: ANN001
    path = var / "log" / "thunder.log"
    return path.read_text() if path.exists() else ""


def test_sighup_reloads_rules_reopens_the_log_and_survives_a_bad_file(
    make_settings, tmp_path, redis_client
) -> None:
    conf = tmp_path / "skyline.conf"
    conf.write_text("[thunder]\ninterval = 0.1\ndata_interval = 0.2\nstale_after = 0\n")
    settings = make_settings(conf)
    var = settings.var_path
    env = {**os.environ, "SKYLINE_CONF": str(conf), "SKYLINE__SKYLINE__VAR_DIR": str(var),
           "SKYLINE__REDIS__URL": settings.redis.url}  # fmt: skip
    store = TimeSeriesStore(redis_client, RedisKeys())
    store.append([("db.silent", int(time.time()) - 500, 1.0)])
    proc = subprocess.Popen([sys.executable, "-m", "skyline.runtime", "thunder"], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: "starting" in _log(var), timeout=30)
        time.sleep(0.5)
        assert not redis_client.hlen(RedisKeys().thunder_stale()), "no rule watches db yet"
        # logrotate moves the file away, then a rule is added and the daemon is told
        (var / "log" / "thunder.log").rename(var / "log" / "thunder.log.1")
        conf.write_text(conf.read_text() + '[[data_health]]\nnamespace = "db"\nstale_after = 60\n'
                        '[horizon]\nline_port = 3999\n')  # fmt: skip
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloaded" in _log(var), timeout=15)
        assert "1 data_health rules" in _log(var)
        assert "applied at the next restart: horizon" in _log(var)
        wait_for(lambda: redis_client.hexists(RedisKeys().thunder_stale(), "db.silent"), timeout=15)
        # a file that does not validate: every problem logged, the daemon carries on
        conf.write_text('[thunder]\ninterval = -1\n[[data_health]]\nnamespace = ""\n')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "were not reloaded" in _log(var), timeout=15)
        assert "interval" in _log(var) and "namespace" in _log(var)
        time.sleep(0.5)
        assert proc.poll() is None, "a bad file on SIGHUP must not stop the daemon"
    finally:
        proc.terminate()
        try:
            assert proc.wait(20) == 0, "the daemon must stop on SIGTERM"
        finally:
            proc.kill()  # no process left behind when it did not (it has exited if it did)


def test_json_lines_on_stderr_for_containers(make_settings, tmp_path, redis_client) -> None:
    """[skyline] log_format = "json", log_to = "stderr": one JSON object per line, and
    no log file (issue 15 item 12)."""
    import json

    settings = make_settings(SKYLINE__THUNDER__INTERVAL="0.1")
    env = {**os.environ, "SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
           "SKYLINE__REDIS__URL": settings.redis.url, "SKYLINE__SKYLINE__LOG_FORMAT": "json",
           "SKYLINE__SKYLINE__LOG_TO": "stderr"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "skyline.runtime", "thunder"], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        wait_for(lambda: redis_client.exists(RedisKeys().heartbeat("thunder")), timeout=60)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert records and {"time", "level", "name", "process", "message"} <= set(records[0])
    assert any(r["message"].startswith("starting") for r in records)
    assert any(r["message"].startswith("stopped after") for r in records)
    assert not (settings.var_path / "log" / "thunder.log").exists()
