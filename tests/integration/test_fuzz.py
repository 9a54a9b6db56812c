"""The fuzz harness (utils/fuzz): a short run on every protocol, and its own checks.

The short run sends a few hundred hostile inputs per protocol, each followed by a good
point, to real horizon, flux and webapp daemons; every good point must be stored and
nothing may crash.  The full run (20,000 per protocol) is recorded in
docs/reliability.md.  SKYLINE_FUZZ_SEED picks another sample of inputs.
"""

from __future__ import annotations

import os

import pytest

from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore
from utils.fuzz.protocols import PROTOCOLS, Ledger
from utils.fuzz.run import run

PER_PROTOCOL = 150


# One at a time under pytest-xdist (Makefile: --dist loadgroup): each runs a whole
# Skyline, and two at once on a 2-core machine only make both slower.
@pytest.mark.xdist_group("full_stack")
def test_short_fuzz_run_loses_no_good_point_and_crashes_nothing() -> None:
    report = run(PER_PROTOCOL, int(os.environ.get("SKYLINE_FUZZ_SEED", "1")))
    protocols = report["protocols"]
    assert set(protocols) == set(PROTOCOLS)
    for name, result in protocols.items():
        assert result["inputs"] >= PER_PROTOCOL, name
        if name != "webapp":
            assert result["good_sent"] == PER_PROTOCOL, name
        assert (result["good_lost"], result["http_5xx"]) == (0, 0), (name, result)
    assert report["daemons_died"] == []
    assert report["crashes"] == 0 and report["good_lost"] == 0
    assert set(report["peak_rss_mb"]) >= {"horizon", "flux", "webapp", "redis"}


class _StoreOnly:
    def __init__(self, store) -> None:  # noqa: ANN001
        self._store = store

    def store(self):  # noqa: ANN201
        return self._store


def test_the_ledger_sees_a_missing_or_changed_point(redis_client) -> None:  # noqa: ANN001
    """The harness can fail: a good point that is absent, or stored with another value,
    is reported lost, with the hostile input it was sent with."""
    store = TimeSeriesStore(redis_client, RedisKeys("sky:"))
    ledger = Ledger("unit", metrics=2)
    sent = []
    for i in range(6):
        ledger.current = f"hostile {i}"
        sent.append(ledger.next())
    for k, (name, ts, value) in enumerate(sent):
        if k == 3:
            continue  # lost
        store.append([(name, ts, value + 1 if k == 4 else value)])  # k == 4: corrupted
    lost = ledger.check(_StoreOnly(store))
    assert sorted(lost) == ["hostile 3", "hostile 4"]
