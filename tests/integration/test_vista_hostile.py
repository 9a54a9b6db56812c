"""A hostile upstream against vista's pull (a Graphite ``/render`` on a free port that
answers what each test asks): one bad timestamp must not stop a metric for good, an
answer trickled a byte at a time is cut at the source's timeout, stopping cuts the
requests under way, and JSON nested too deep is ``malformed``.  Found by a hunt
(2026-12-07): each of these stored nothing more, hung or raised."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from skyline.ingest.vista.sources import SourceError
from tests.integration.test_mirage_history_http import HistoryServer
from tests.integration.vista_fixtures import Harness, vista_conf

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server():
    s = HistoryServer([])
    yield s
    s.close()


def harness(make_settings, tmp_path: Path, server: HistoryServer, timeout: float = 5) -> Harness:
    conf = vista_conf(tmp_path / "s.conf", {
        "name": "up", "kind": "graphite", "url": server.url, "query": "x", "namespace": "up",
        "timeout": timeout, "backfill_days": 0.05,
    })  # fmt: skip
    return Harness(make_settings(conf))


@pytest.mark.parametrize("bad", ["future", "millis", "nan"])
def test_one_bad_timestamp_does_not_stop_the_metric(make_settings, tmp_path, server, bad):
    """A point in the future, in milliseconds or without a time among good ones: it is
    refused and counted, and the metric's cursor stays at the newest good point, so the
    next pulls store the next points (the cursor used to jump to the bad time)."""
    now = int(time.time()) // 60 * 60
    wrong = {"future": now + 3 * 86400, "millis": now * 1000, "nan": float("nan")}[bad]
    server.points = [(now - 60 * k, float(k)) for k in range(5, 0, -1)] + [(wrong, 9.0)]
    h = harness(make_settings, tmp_path, server)
    first = h.pull("up", now)
    reason = "value_not_finite" if bad == "nan" else "timestamp_in_future"
    assert dict(first.delivered.rejected) == {reason: 1}
    assert [v for _, v in h.series("up.x")] == [5.0, 4.0, 3.0, 2.0, 1.0]
    server.points = [(now, 0.5), (wrong, 9.0)]
    second = h.pull("up", now + 60)
    assert [v for _, v in h.series("up.x")][-1] == 0.5 and second.delivered.live == 1
    h.close()


@pytest.mark.parametrize("mode", ["trickle", "trickle-headers", "trickle-chunk"])
def test_a_trickled_answer_is_cut_at_the_timeout(make_settings, tmp_path, server, mode):
    server.mode = mode
    h = harness(make_settings, tmp_path, server, timeout=1)
    with pytest.raises(SourceError) as caught:
        h.pull("up", time.time())
    assert caught.value.reason == "timeout" and "deadline" in str(caught.value)
    assert server.trickled < 100  # cut, not read to its end
    h.close()


def test_stopping_cuts_a_request_under_way(make_settings, tmp_path, server):
    """The source's timeout is a minute and the upstream trickles: ``close`` (vista
    stopping) ends the pull at once, so its thread cannot keep the process alive."""
    server.mode = "trickle"
    h = harness(make_settings, tmp_path, server, timeout=60)
    source, failures = h.source("up"), []

    def run() -> None:
        try:
            h.pull("up", time.time())
        except SourceError as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not server.requests:
        time.sleep(0.05)
    source.close()
    thread.join(30)
    assert not thread.is_alive()
    assert failures[0].reason == "timeout" and "stopping" in str(failures[0])
    assert server.trickled < 100  # cut, not read to its end
    with pytest.raises(SourceError, match="stopping"):  # and no new request is made
        h.pull("up", time.time())
    assert len(server.requests) == 1
    h.close()


def test_json_nested_too_deep_is_malformed(make_settings, tmp_path, server):
    server.mode = "deep"
    h = harness(make_settings, tmp_path, server)
    with pytest.raises(SourceError) as caught:
        h.pull("up", time.time())
    assert caught.value.reason == "malformed"
    h.close()


def test_points_older_than_the_rollups_keep_are_refused_and_counted(make_settings, tmp_path,
                                                                   server):  # fmt: skip
    """They were counted as rolled up while the rollups dropped them."""
    now = int(time.time()) // 600 * 600
    retention = make_settings().mirage.rollup_retention
    server.points = [(now - retention - 86400, 1.0), (now - 7200, 2.0), (now - 60, 3.0)]
    h = harness(make_settings, tmp_path, server)
    out = h.pull("up", now, since=now - retention - 2 * 86400).delivered
    assert dict(out.rejected) == {"timestamp_too_old": 1}
    assert out.live == 2 and out.rolled == 0
    h.close()
