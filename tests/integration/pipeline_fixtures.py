"""Running daemons of the alert pipeline in test threads, and making anomaly events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from skyline.db import migrate
from skyline.events.anomaly import AnomalyEvent
from skyline.runtime.daemon import Daemon
from skyline.settings import Settings
from tests.conftest import wait_for


@contextmanager
def running(daemon: Daemon, ready: str = "consumer", timeout: float = 10.0) -> Iterator[Daemon]:
    """Run ``daemon`` in a thread until the block ends; waits up to ``timeout`` seconds
    for its ``ready`` attribute."""
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    wait_for(lambda: hasattr(daemon, ready) or not thread.is_alive(), timeout=timeout)
    assert thread.is_alive(), "the daemon stopped at start"
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(15)
        assert not thread.is_alive(), f"{daemon.name} did not stop"


def pipeline_settings(make_settings, tmp_path: Path, conf_text: str, **env: str) -> Settings:
    conf = tmp_path / "skyline.conf"
    conf.write_text(conf_text)
    settings = make_settings(conf, **{"SKYLINE__SKYLINE__RETRY_BACKOFF_MAX": "0.3", **env})
    migrate.upgrade(settings.database_url)
    return settings


def anomaly(
    metric: str = "web.latency", ts: int | None = None, value: float = 500.0
) -> AnomalyEvent:
    ts = ts or int(time.time())
    algorithms = ("histogram_bins", "grubbs", "stddev_from_average", "least_squares", "ks_test",
                  "first_hour_average", "median_absolute_deviation")  # fmt: skip
    return AnomalyEvent(metric, ts, value, "analyzer", algorithms, algorithms[:6],
                        {a: 3.5 for a in algorithms[:6]}, 86400, time.time(), "testhost")  # fmt: skip
