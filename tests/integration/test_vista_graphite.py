"""vista's Graphite source against a real carbon-cache + graphite-web on loopback:
render targets with functions, incremental pulls without doubles, history backfill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from skyline.ingest.vista.sources import SourceError
from tests.conftest import wait_for
from tests.integration.graphite_server import Graphite
from tests.integration.vista_fixtures import Harness, vista_conf

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def graphite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    server = Graphite(tmp_path_factory.mktemp("graphite"))
    server.start()
    yield server
    server.stop()


def _rendered(g: Graphite, target: str, start: int, n: int, last: int = 0) -> bool:
    r = requests.get(f"{g.url}/render", params={"target": target, "from": start - 60,
                     "until": last + 60 if last else "now", "format": "json"}, timeout=10)  # fmt: skip
    doc = r.json() if r.ok else []
    points = [p for p in doc[0]["datapoints"] if p[0] is not None] if doc else []
    return len(points) >= n and (not last or points[-1][1] == last)


def test_graphite_pull_with_functions(graphite: Graphite, make_settings, tmp_path: Path) -> None:
    now = int(time.time()) // 60 * 60
    start = now - 3 * 3600
    lines = []
    for i, t in enumerate(range(start, now, 60)):
        lines += [("web.a.requests", 10 + i % 3, t), ("web.b.requests", 100.0, t)]
    graphite.send(lines)
    target = "sumSeries(web.*.requests)"
    wait_for(lambda: _rendered(graphite, target, start, 170), timeout=60, interval=0.5)
    conf = vista_conf(tmp_path / "s.conf", {
        "name": "web", "kind": "graphite", "url": graphite.url, "query": target,
        "namespace": "gr", "backfill_days": 0.13,
    }, {"name": "plain", "kind": "graphite", "url": graphite.url, "query": "web.a.requests"},
       {"name": "bad", "kind": "graphite", "url": graphite.url, "query": "noSuchFunction(web.a.requests)"})  # fmt: skip
    h = Harness(make_settings(conf))
    r = h.pull("web", now)
    assert r.metrics == 1
    s = h.store.read("gr.sumSeries_web._.requests_")
    assert len(s) == 180 and s.timestamps[0] == start
    assert s.values.tolist()[:3] == [110.0, 111.0, 112.0]
    # new points arrive: only they are stored
    graphite.send([("web.a.requests", 500.0, now), ("web.b.requests", 0.0, now)])
    wait_for(lambda: _rendered(graphite, target, now, 1, last=now), timeout=60, interval=0.5)
    r = h.pull("web", now + 60)
    assert r.new == 1
    assert h.raw_count("gr.sumSeries_web._.requests_") == 181
    with pytest.raises(SourceError) as exc:
        h.pull("bad", now)
    assert exc.value.reason == "query"
    h.close()
