"""Profiles API and the profile cache on real Redis and real SQL (SQLite and MariaDB),
with a real memcached and with the in-process cache: a profile created, disabled or
deleted is seen by the very next lookup; memcached dying falls back to SQL, counted."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.cache import ProfileCache
from skyline.analysis.ionosphere.profile_data import CorruptProfile, load_data
from skyline.analysis.ionosphere.profiles import (
    ProfileError,
    create_profile,
    delete_profile,
    list_profiles,
    profile_detail,
    set_enabled,
    training_window,
    validate_profile,
)
from skyline.db import make_engine, upgrade
from skyline.db.models import FeaturesProfile, Metric, ProfileSeries
from skyline.settings import IonosphereSection
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import free_port, wait_for
from tests.integration import conftest_db
from tests.peers import require

db_url = conftest_db.db_url
mysql_url = conftest_db.mysql_url
T0 = 1_700_000_000


def day(seed: int = 0, n: int = 1440) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = T0 + 60 * np.arange(n)
    return np.column_stack([t, 100 + 20 * np.sin(np.arange(n) / 90) + rng.normal(0, 1, n)])


@pytest.fixture
def memcached():
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.path.exists(binary):
        require("memcached", "not installed (apt-get install memcached)")
    port = free_port()
    root = ["-u", "root"] if os.geteuid() == 0 else []  # memcached refuses root otherwise
    proc = subprocess.Popen([binary, "-p", str(port), "-U", "0", "-l", "127.0.0.1", *root])

    def up() -> bool:
        assert proc.poll() is None, "memcached exited at start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(up)
    yield proc, f"127.0.0.1:{port}"
    if proc.poll() is None:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def engine(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def cfg(**kw) -> IonosphereSection:
    return IonosphereSection(**kw)


@pytest.mark.parametrize("backend", ["local", "memcached"])
def test_changes_are_seen_by_the_next_lookup(backend, engine, redis_client, request):
    address = request.getfixturevalue("memcached")[1] if backend == "memcached" else ""
    keys = RedisKeys("sky:")
    counts: Counter[str] = Counter()
    cache = ProfileCache(
        engine, redis_client, keys, cfg(memcached=address), lambda n: counts.update([n])
    )
    settings = cfg()
    assert cache.get("m") == ([], {})
    first = create_profile(engine, redis_client, keys, settings, metric="m", series=day(1),
                           anomaly_timestamp=T0 + 86340, full_duration=86400)  # fmt: skip
    metas, data = cache.get("m")
    assert [m.id for m in metas] == [first] and data[first].series.shape == (1440,)
    assert redis_client.sismember(keys.ionosphere_metrics(), "m")
    cache.get("m")
    assert counts["cache.hits"] >= 1
    second = create_profile(engine, redis_client, keys, settings, metric="m", series=day(2),
                            anomaly_timestamp=T0 + 86340, full_duration=86400, learn=True)  # fmt: skip
    assert sorted(m.id for m in cache.get("m")[0]) == [first, second]
    set_enabled(engine, redis_client, keys, first, False)
    assert [m.id for m in cache.get("m")[0]] == [second]
    set_enabled(engine, redis_client, keys, first, True)
    assert len(cache.get("m")[0]) == 2
    delete_profile(engine, redis_client, keys, second)
    assert [m.id for m in cache.get("m")[0]] == [first]
    delete_profile(engine, redis_client, keys, first)
    assert cache.get("m")[0] == []
    assert not redis_client.sismember(keys.ionosphere_metrics(), "m")
    with Session(engine) as db:
        assert not db.scalar(select(Metric.ionosphere_enabled).where(Metric.name == "m"))
    assert counts["cache.errors"] == 0


def test_memcached_killed_mid_run_falls_back_to_sql(engine, redis_client, memcached):
    proc, address = memcached
    keys = RedisKeys("sky:")
    counts: Counter[str] = Counter()
    cache = ProfileCache(engine, redis_client, keys, cfg(memcached=address, memcached_timeout=0.2),
                         lambda n: counts.update([n]))  # fmt: skip
    pid = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(),
                         anomaly_timestamp=T0 + 86340, full_duration=86400)  # fmt: skip
    assert [m.id for m in cache.get("m")[0]] == [pid]
    proc.kill()
    proc.wait(5)
    metas, data = cache.get("m")
    assert [m.id for m in metas] == [pid] and pid in data  # from SQL
    assert counts["cache.errors"] >= 1
    second = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(3),
                            anomaly_timestamp=T0 + 86340, full_duration=86400)  # fmt: skip
    assert sorted(m.id for m in cache.get("m")[0]) == [pid, second]


def test_list_detail_validate_and_disabling_progeny(engine, redis_client):
    keys = RedisKeys("sky:")
    parent = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(),
                            anomaly_timestamp=T0 + 86340, full_duration=86400, label="normal",
                            learn=True)  # fmt: skip
    child = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(5),
                           anomaly_timestamp=T0 + 86340, full_duration=86400, parent_id=parent,
                           generation=1)  # fmt: skip
    rows = list_profiles(engine, "m")
    assert [r["id"] for r in rows] == [child, parent]
    assert rows[1]["label"] == "normal" and rows[0]["generation"] == 1
    assert rows[1]["features_count"] > 100 and rows[1]["enabled"] is True
    detail = profile_detail(engine, parent)
    assert detail["metric"] == "m" and detail["learn"] is True and len(detail["series"]) == 1440
    assert "value__mean" in detail["features"]
    assert [m["size"] for m in detail["motifs"]] == [180, 360, 720]
    validate_profile(engine, child, user_id=None)
    assert profile_detail(engine, child)["validated"] is True
    set_enabled(engine, redis_client, keys, parent, False)
    assert [r["enabled"] for r in list_profiles(engine, "m")] == [False, False]
    assert not redis_client.sismember(keys.ionosphere_metrics(), "m")
    with pytest.raises(ProfileError, match="no features profile"):
        profile_detail(engine, 999_999)


@pytest.mark.parametrize(("series", "message"), [
    (day()[:10], "too short"),
    (np.column_stack([np.arange(100.0), np.full(100, np.nan)]), "no finite values"),
    (np.column_stack([np.arange(100.0), np.full(100, 3.0)]), "constant"),
    (np.arange(100.0), r"\(n, 2\)"),
])  # fmt: skip
def test_unusable_series_are_refused(engine, redis_client, series, message):
    with pytest.raises(ProfileError, match=message):
        create_profile(engine, redis_client, RedisKeys("sky:"), cfg(), metric="m", series=series,
                       anomaly_timestamp=T0, full_duration=86400)  # fmt: skip
    assert list_profiles(engine, "m") == []


def test_training_window_is_the_judged_window(redis_client):
    keys = RedisKeys("sky:")
    store = TimeSeriesStore(redis_client, keys)
    pts = day(n=3000)
    store.append([("m", float(t), float(v)) for t, v in pts])
    end = int(pts[2000, 0])
    w = training_window(store, "m", end, 86400)
    assert len(w) == 1440 and w[-1, 0] == end and w[0, 0] == end - 86400 + 60


def _multi_calls(redis_client) -> int:
    return int(redis_client.info("commandstats").get("cmdstat_multi", {}).get("calls", 0))


def test_profile_changes_use_no_multi_and_the_version_is_never_reused(engine, redis_client):
    """ionosphere:metrics and ionosphere:version:<metric> live in different Redis
    Cluster slots: no MULTI may span them (real Redis' command statistics show none).
    The version outlives the metric's last profile, so a later create never reuses a
    number a cache still holds an index for."""
    keys = RedisKeys("sky:")
    cache = ProfileCache(engine, redis_client, keys, cfg())
    before = _multi_calls(redis_client)
    first = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(1),
                           anomaly_timestamp=T0 + 86340, full_duration=86400)  # fmt: skip
    assert [m.id for m in cache.get("m")[0]] == [first]
    set_enabled(engine, redis_client, keys, first, False)
    set_enabled(engine, redis_client, keys, first, True)
    delete_profile(engine, redis_client, keys, first)
    assert _multi_calls(redis_client) == before
    assert redis_client.get(keys.profiles_version("m")) == b"4"  # not deleted
    assert cache.get("m")[0] == []
    second = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(2),
                            anomaly_timestamp=T0 + 86340, full_duration=86400)  # fmt: skip
    assert redis_client.get(keys.profiles_version("m")) == b"5"
    assert [m.id for m in cache.get("m")[0]] == [second]


def test_the_last_matched_order_is_that_of_check_time(engine, redis_client):
    """The cached index keeps its load-time order; a match this process records puts
    its profile first on the very next lookup, without a version change."""
    keys = RedisKeys("sky:")
    cache = ProfileCache(engine, redis_client, keys, cfg())
    a, b = (create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(s),
                           anomaly_timestamp=T0 + 86340, full_duration=86400)
            for s in (1, 2))  # fmt: skip
    assert [m.id for m in cache.get("m")[0]] == [b, a]  # never matched: newest first
    version = redis_client.get(keys.profiles_version("m"))
    cache.note_match(a, T0 + 90000)
    assert [m.id for m in cache.get("m")[0]] == [a, b]
    cache.note_match(b, T0 + 90060)
    assert [m.id for m in cache.get("m")[0]] == [b, a]
    assert redis_client.get(keys.profiles_version("m")) == version


def test_a_profile_series_of_fewer_than_two_points_is_refused(engine, redis_client):
    keys = RedisKeys("sky:")
    pid = create_profile(engine, redis_client, keys, cfg(), metric="m", series=day(),
                         anomaly_timestamp=T0 + 86340, full_duration=86400)  # fmt: skip
    with Session(engine) as db:
        first = min(s.timestamp for s in db.get(FeaturesProfile, pid).series)
        db.execute(delete(ProfileSeries).where(ProfileSeries.profile_id == pid,
                                               ProfileSeries.timestamp > first))  # fmt: skip
        db.commit()
    (refused,) = load_data(engine, [pid]).values()
    assert isinstance(refused, CorruptProfile) and "fewer than 2" in str(refused)
