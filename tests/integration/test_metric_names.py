"""The web process's cache of sorted metric names (skyline.webapp.metric_names) on a
real Redis: re-read when the set's size changes or when it is older than max_age
(injected clock), else served from memory; search by substring and by glob."""

from __future__ import annotations

from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from skyline.webapp.metric_names import MetricNames


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_names_are_cached_until_the_set_changes_or_ages(redis_client):
    store = TimeSeriesStore(redis_client, RedisKeys("cache-test"))
    store.append_grouped({"b.x": ([1.0], [1.0]), "a.y": ([1.0], [1.0])})
    clock = Clock()
    names = MetricNames(max_age=60, clock=clock)
    first = names.all(store)
    assert first == ["a.y", "b.x"]
    assert names.all(store) is first  # from memory
    store.append_grouped({"c.z": ([1.0], [1.0])})  # the size changed: read again
    assert names.all(store) == ["a.y", "b.x", "c.z"]
    store.delete("c.z")
    store.append_grouped({"d.w": ([1.0], [1.0])})  # same size: stale until max_age
    assert names.all(store) == ["a.y", "b.x", "c.z"]
    clock.now += 61
    assert names.all(store) == ["a.y", "b.x", "d.w"]


def test_search_by_substring_and_by_glob(redis_client):
    store = TimeSeriesStore(redis_client, RedisKeys("search-test"))
    store.append_grouped({n: ([1.0], [1.0]) for n in
                          ("web.latency", "web.errors", "db.latency", "a[1].b", "x%y_z")})  # fmt: skip
    names = MetricNames()
    assert names.search(store, "latency") == ["db.latency", "web.latency"]
    assert names.search(store, "web.*") == ["web.errors", "web.latency"]
    assert names.search(store, "*.latency") == ["db.latency", "web.latency"]
    assert names.search(store, "we?.errors") == ["web.errors"]
    assert names.search(store, "web") == ["web.errors", "web.latency"]
    assert names.search(store, "%") == ["x%y_z"]  # no SQL or regex meaning
    assert names.search(store, "a[[]1]*") == ["a[1].b"]
    assert names.search(store, "(") == []
    assert names.search(store, "") == names.all(store)
