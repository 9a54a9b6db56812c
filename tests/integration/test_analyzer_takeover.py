"""Three real analyzer processes on one real Redis (and on the real Redis Cluster of
the suite) share the metrics; one is killed
with SIGKILL while data flows, and the two survivors analyse its metrics -- the
points that arrived after the kill included -- within its lease and a few passes,
far sooner than the next regular sweep (docs/scaling.md, "Sharded daemons").

Bounds are in the survivors' own passes (their member records count them), never
in wall-clock time; the polls are generous."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from skyline.analysis.algorithms.state import last_learned
from skyline.runtime.membership import Member, read_members
from skyline.runtime.shares import Shares
from skyline.settings import Settings
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from tests.conftest import wait_for

N_METRICS = 60
STEP = 60
LEASE = 2.0  # [skyline] member_lease
ARRIVAL = 0.1  # [analyzer] arrival_interval: a pass takes at least this
SWEEP = 120.0  # [analyzer] interval: the regular sweep would come far too late
NAMES = [f"takeover.{i}" for i in range(N_METRICS)]
ENV = {
    "SKYLINE__ANALYZER__MODE": "default",
    "SKYLINE__ANALYZER__INTERVAL": str(SWEEP),
    "SKYLINE__ANALYZER__ARRIVAL_INTERVAL": str(ARRIVAL),
    "SKYLINE__SKYLINE__MEMBER_LEASE": str(LEASE),
    "SKYLINE__ANALYZER__STATE_CHECKPOINT": "0",
}  # states in Redis every pass: observable


@pytest.fixture(params=["redis", "cluster"])
def backend(request: pytest.FixtureRequest, redis_client) -> Iterator[tuple[str, object]]:
    """(the URL the analyzers get, a client of the same Redis): the test's Redis DB,
    then the session's Redis Cluster, flushed."""
    if request.param == "redis":
        yield request.getfixturevalue("redis_url"), redis_client
        return
    url = request.getfixturevalue("cluster_url")
    client = request.getfixturevalue("redis_cluster").client()
    yield url, client
    client.close()


@pytest.fixture
def settings(make_settings, backend) -> Settings:
    return make_settings(**ENV, SKYLINE__REDIS__URL=backend[0])


def spawn(settings: Settings, i: int, log_dir: Path) -> subprocess.Popen:
    env = {**os.environ, **ENV, "SKYLINE__SKYLINE__VAR_DIR": str(settings.var_path),
           "SKYLINE__REDIS__URL": settings.redis.url, "SKYLINE__SKYLINE__HOST": f"node{i}",
           "SKYLINE__SKYLINE__LOG_TO": "stderr", "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
    log = (log_dir / f"analyzer{i}.err").open("wb")
    return subprocess.Popen([sys.executable, "-m", "skyline.analysis.analyzer"], env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


@pytest.fixture
def analyzers(settings, tmp_path) -> Iterator[list[subprocess.Popen]]:
    procs = [spawn(settings, i, tmp_path) for i in range(3)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


class Feed:
    """Appends one point to every metric (through the changed set) per call."""

    def __init__(self, store: TimeSeriesStore, t0: int) -> None:
        self.store, self.t = store, t0
        self.rng = np.random.default_rng(18)

    def point(self) -> int:
        self.t += STEP
        values = 100 + self.rng.normal(0, 1, N_METRICS)
        self.store.append_grouped({m: ([self.t], [float(v)]) for m, v in zip(NAMES, values,
                                                                                strict=True)},
                                  changed=True)  # fmt: skip
        return self.t


def judged(client, keys: RedisKeys) -> list[float | None]:
    pipe = client.pipeline(transaction=False)  # single-key GETs: any slot on a cluster
    for m in NAMES:
        pipe.get(keys.detector_state(m))
    return [last_learned(cast(bytes | None, b)) for b in pipe.execute()]


def live_members(client, keys: RedisKeys) -> list[Member]:
    # the test's own clock is only used to read the records the daemons wrote
    return [m for m in read_members(client, keys, "analyzer")[0] if m.info.get("runs") is not None]


def test_a_killed_analyzers_metrics_are_taken_over_within_its_lease(settings, analyzers,
                                                                    backend):  # fmt: skip
    redis_client = backend[1]
    keys = RedisKeys(settings.redis.prefix)
    store = TimeSeriesStore(redis_client, keys)
    rng = np.random.default_rng(1)
    t0 = 1_700_000_000
    ts = [t0 + STEP * i for i in range(200)]
    store.append_grouped({m: (ts, (100 + rng.normal(0, 1, 200)).tolist()) for m in NAMES})
    feed = Feed(store, ts[-1])

    def settled() -> list[Member] | None:
        found = live_members(redis_client, keys)
        if len(found) != 3 or any(m.info.get("members") != 3 for m in found):
            return None
        return found if sum(int(m.info.get("metrics", 0)) for m in found) == N_METRICS else None

    members = wait_for(settled, timeout=90, interval=0.2)
    shares = Shares([m.id for m in members])
    assert all(int(m.info["metrics"]) > 0 for m in members), "each analyzer has a share"
    first = feed.point()
    wait_for(lambda: set(judged(redis_client, keys)) == {float(first)}, timeout=60)

    stop = threading.Event()

    def keep_feeding() -> None:
        while not stop.wait(ARRIVAL):
            feed.point()

    writer = threading.Thread(target=keep_feeding, daemon=True)
    writer.start()
    wait_for(lambda: feed.t >= first + 10 * STEP, timeout=30)
    victim_proc = analyzers[0]
    victim = next(m for m in members if m.pid == victim_proc.pid)
    before = {m.id: int(m.info["runs"]) for m in live_members(redis_client, keys)}
    os.kill(victim_proc.pid, signal.SIGKILL)  # mid-pass, data flowing
    victim_proc.wait(10)
    stop.set()
    writer.join(10)
    last = feed.point()  # arrives while the dead member still holds its lease
    victims_metrics = shares.mine(victim.id, NAMES)
    assert victims_metrics

    wait_for(lambda: set(judged(redis_client, keys)) == {float(last)}, timeout=90, interval=0.1)
    after = {m.id: m for m in live_members(redis_client, keys)}
    survivors = [after[mid] for mid in before if mid != victim.id]
    passes = max(int(m.info["runs"]) - before[m.id] for m in survivors)
    # the lease runs out within LEASE / ARRIVAL passes of the kill (a pass lasts at
    # least ARRIVAL); then one pass takes the share over (a few spare for start-up
    # and the renewal in flight).  The regular sweep would need SWEEP / ARRIVAL.
    bound = int(LEASE / ARRIVAL) + 10
    print(f"takeover: {passes} survivor passes after the kill (bound {bound})")
    assert passes <= bound, (passes, bound)
    assert bound < SWEEP / ARRIVAL / 4

    def survivors_share_everything() -> bool:
        found = [m for m in live_members(redis_client, keys) if m.id != victim.id]
        return (len(found) == 2 and all(m.info.get("members") == 2 for m in found)
                and sum(int(m.info["metrics"]) for m in found) == N_METRICS)  # fmt: skip

    wait_for(survivors_share_everything, timeout=30)
    assert all(p.poll() is None for p in analyzers[1:]), "the survivors still run"
