"""Stream consumers scale through their consumer group: two panorama daemons on one
real Redis and one real SQL database share stream:anomalies, each entry handled by
exactly one of them (docs/scaling.md, "Sharded daemons")."""

from __future__ import annotations

import itertools
from contextlib import ExitStack

import pytest

from skyline.events import stream_daemon
from skyline.events.anomaly import publish
from skyline.events.panorama.agent import Panorama
from tests.conftest import wait_for
from tests.integration.pipeline_fixtures import anomaly, pipeline_settings, running
from tests.integration.test_panorama import count

N_EVENTS = 300


@pytest.fixture
def settings(make_settings, tmp_path):
    return pipeline_settings(make_settings, tmp_path, "", SKYLINE__PANORAMA__INTERVAL="0.1",
                             SKYLINE__PANORAMA__CLAIM_IDLE="60")  # fmt: skip


def test_two_panoramas_share_a_stream_without_handling_an_entry_twice(
    settings, redis_client, monkeypatch
) -> None:
    # two processes' consumer names differ by pid; these two share a pid
    names = itertools.count()
    monkeypatch.setattr(stream_daemon, "consumer_name", lambda d: f"{d}-test-{next(names)}")
    with ExitStack() as stack:
        a = stack.enter_context(running(Panorama(settings)))
        b = stack.enter_context(running(Panorama(settings)))
        assert a.consumer.consumer != b.consumer.consumer
        for i in range(N_EVENTS):
            publish(redis_client, a.keys, anomaly(f"shared.{i}", ts=1_700_000_000 + i), 10_000)
        wait_for(lambda: count(settings) == N_EVENTS, timeout=60)
        wait_for(
            lambda: redis_client.xpending(a.keys.anomalies_stream(), "panorama")["pending"] == 0
        )
        stored = [d.counters.peek().get("anomalies_stored", 0) for d in (a, b)]
        dupes = [d.counters.peek().get("duplicates", 0) for d in (a, b)]
    assert sum(stored) == N_EVENTS, "each entry stored once, by one of them"
    assert dupes == [0, 0], "no entry was delivered to both"
    assert all(n > 0 for n in stored), f"both consumers took a share: {stored}"
    consumers = redis_client.xinfo_consumers(a.keys.anomalies_stream(), "panorama")
    assert sorted(c["name"] for c in consumers) == sorted(
        x.encode() for x in (a.consumer.consumer, b.consumer.consumer)
    )
