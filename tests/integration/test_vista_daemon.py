"""The vista daemon: sources pulled side by side; a failing, hung or misconfigured
source is counted, shown with its last error, backed off and raised to thunder, while
the others keep delivering."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from skyline.ingest.vista.agent import Vista
from skyline.ingest.vista.route import deliver
from skyline.ingest.vista.sources import SOURCES
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for
from tests.integration.vista_fixtures import vista_conf

FIXTURES = Path(__file__).parent.parent / "fixtures" / "extensions"


def _table(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE m (ts INTEGER, value REAL)"))
        now = int(time.time())
        conn.execute(sa.text("INSERT INTO m VALUES (:t, :v)"),
                     [{"t": now - 60 * i, "v": float(i)} for i in range(5)])  # fmt: skip
    engine.dispose()
    return url


def test_failing_sources_do_not_stop_the_others(make_settings, tmp_path: Path) -> None:
    url = _table(tmp_path / "db.sqlite")
    good = {"name": "good", "kind": "sql", "url": url, "interval": 0.5,
            "query": "SELECT ts, value FROM m WHERE ts > :start AND ts <= :end",
            "options": {"time_type": "epoch"}, "backfill_days": 0.01, "namespace": "ok"}  # fmt: skip
    conf = vista_conf(
        tmp_path / "s.conf",
        good,
        {
            **good,
            "name": "broken",
            "query": "SELECT nope FROM nowhere",
            "failing_after": 2,
            "interval": 0.2,
        },  # fmt: skip
        {**good, "name": "typo", "kind": "sqll"},
        {**good, "name": "nosecret", "url": "${VISTA_TEST_UNSET_VARIABLE}"},
    )
    settings = make_settings(conf)
    daemon = Vista(settings)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(daemon.store.read("ok.value")) == 5, timeout=20)
        # the failing source is raised once to thunder after failing_after failures
        alerts = wait_for(lambda: [
            json.loads(f[b"event"]) for _, f in daemon.redis.xrange(daemon.keys.anomalies_stream())
        ], timeout=20)  # fmt: skip
        assert [a["metric"] for a in alerts] == ["skyline.thunder.vista.broken.failing"]
        state = wait_for(lambda: {
            k.decode(): json.loads(v) for k, v in daemon.redis.hgetall(daemon.keys.vista_status()).items()
        } if daemon.redis.hlen(daemon.keys.vista_status()) == 4 else None)  # fmt: skip
        assert state["good"]["ok"] and state["good"]["points"] == 5
        assert not state["broken"]["ok"] and state["broken"]["errors"].get("query", 0) >= 2
        assert "nowhere" in state["broken"]["last_error"]
        assert (
            state["typo"]["last_error"].startswith("config:")
            and "sqll" in state["typo"]["last_error"]
        )
        assert "VISTA_TEST_UNSET_VARIABLE" in state["nosecret"]["last_error"]
        counters = daemon.counters.peek()
        assert counters["errors.query"] >= 2 and counters["errors.config"] >= 2
    finally:
        daemon.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_a_pull_source_is_one_file(monkeypatch) -> None:
    """A source kind added by one module on the sources package's path."""
    import skyline.ingest.vista.sources as pkg

    monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(FIXTURES)])
    try:
        SOURCES.reload()
        assert "constant" in SOURCES.names()
        from skyline.ingest.vista.sources import build
        from skyline.settings.vista import VistaSource

        cfg = VistaSource(name="c", kind="constant", url="none", options={"value": 7.0})
        got = build(cfg).fetch(100.0, 400.0)
        assert [(s.name, s.values.tolist()) for s in got] == [("constant", [7.0] * 5)]
    finally:
        monkeypatch.undo()
        sys.modules.pop("skyline.ingest.vista.sources.constant", None)
        SOURCES._items.pop("constant", None)  # leave the registry as the package defines it
        SOURCES.reload()


def test_a_series_key_of_another_type_refuses_only_its_points(make_settings, redis_client) -> None:
    """Something else wrote a hash where a pulled metric's series lives: its points are
    counted as refused, the other metric's are stored."""
    store = TimeSeriesStore(redis_client, RedisKeys("vt:"))
    redis_client.hset(store.keys.series("pulled.foreign"), "f", "v")
    now = time.time()
    t = now - 60.0 * np.arange(5)[::-1]
    out = deliver(store, make_settings(), {"pulled.mine": (t, np.ones(5)),
                                           "pulled.foreign": (t, np.ones(5))}, now)  # fmt: skip
    assert out.live == 5 and out.rejected == {"series_key_wrong_type": 5}
    assert len(store.read("pulled.mine")) == 5 and len(store.read("pulled.foreign")) == 0
