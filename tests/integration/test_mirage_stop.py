"""``python -m skyline.analysis.mirage`` stopped by SIGTERM (as ``skyline stop`` does) while a
history fetch hangs: the process exits by itself, well before its 60 s read timeout
would end the fetch -- the interpreter joins the check pool's threads at exit, so a
fetch the stop did not cut would hold it (and ``skyline stop`` would SIGKILL it after
15 s) -- and the check stays pending for the next mirage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from skyline.events.streams import StreamConsumer
from skyline.store.keys import RedisKeys
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings
from tests.integration.test_mirage import CONF
from tests.integration.test_mirage_history_http import HistoryServer


@pytest.fixture
def server():
    s = HistoryServer([])
    yield s
    s.close()


def test_sigterm_during_a_hung_fetch_exits_and_leaves_the_check_pending(make_settings, tmp_path,
                                                                       redis_client, server):  # fmt: skip
    env = {"SKYLINE__MIRAGE__INTERVAL": "0.1", "SKYLINE__MIRAGE__GRAPHITE_URL": server.url,
           "SKYLINE__MIRAGE__REMOTE_CONNECT_TIMEOUT": "1",
           "SKYLINE__MIRAGE__REMOTE_READ_TIMEOUT": "60", "SKYLINE__MIRAGE__REMOTE_ATTEMPTS": "1"}  # fmt: skip
    settings = pipeline_settings(make_settings, tmp_path, CONF, **env)
    env.update({"SKYLINE_CONF": str(tmp_path / "skyline.conf"),
                "SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
                "SKYLINE__REDIS__URL": settings.redis.url,
                "SKYLINE__SKYLINE__RETRY_BACKOFF_MAX": "0.3"})  # fmt: skip
    server.hold = threading.Event()  # the request is read, never answered
    keys = RedisKeys(settings.redis.prefix)
    proc = subprocess.Popen([sys.executable, "-m", "skyline.analysis.mirage"], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    client = redis_client
    try:
        wait_for(lambda: client.exists(keys.heartbeat("mirage")), timeout=30)
        client.xadd(keys.mirage_stream(), anomaly("shop.hung").to_fields())
        wait_for(lambda: server.active == 1, timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)  # generous; the hung fetch alone would take 60 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (settings.var_path / "log" / "mirage.log").read_text()
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert "stop: 1 fetches cut, 1 checks running, 0 still running" in log, log[-2000:]
    consumer = StreamConsumer(client, [keys.mirage_stream()], "mirage", "test")
    assert consumer.pending_count() == 1
