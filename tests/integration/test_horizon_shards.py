"""Two horizons on one real Redis split roomba's work by membership: each trims only
its share, and a lone (or surviving) horizon trims everything."""

from __future__ import annotations

import pytest

from skyline.ingest.horizon.agent import Horizon

NAMES = [f"roomba.shard.{i}" for i in range(40)]
NOW = 1_700_100_000.0
DAY = 86400


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def make_horizon(make_settings):
    settings = make_settings(SKYLINE__SKYLINE__MEMBER_LEASE="10", SKYLINE__MIRAGE__ROLLUPS="off")
    clock = Clock()

    def make() -> Horizon:
        h = Horizon(settings, clock=clock)
        h._next_rollup = float("inf")  # setup() (listeners) is not run here
        h.renew_membership()
        return h

    make.clock = clock  # type: ignore[attr-defined]
    return make


def seed(h: Horizon) -> None:
    """Each metric: 5 points older than full_duration, 5 recent ones."""
    old = [NOW - DAY - 3600 + 60 * i for i in range(5)]
    new = [NOW - 600 + 60 * i for i in range(5)]
    h.store.append_grouped({m: (old + new, [1.0] * 10) for m in NAMES})


def trimmed(h: Horizon) -> set[str]:
    return {m for m in NAMES if len(h.store.read(m)) == 5}


def test_two_horizons_trim_disjoint_shares(make_horizon) -> None:
    a, b = make_horizon(), make_horizon()
    seed(a)
    a.roomba()
    mine_a = trimmed(a)
    assert 0 < len(mine_a) < len(NAMES), "a trimmed its share only"
    assert a.member_info()["metrics"] == len(mine_a) and a.member_info()["members"] == 2
    b.roomba()
    assert trimmed(b) == set(NAMES)
    assert b.member_info()["metrics"] == len(NAMES) - len(mine_a)


def test_a_dead_horizons_share_is_trimmed_by_the_survivor(make_horizon) -> None:
    a, b = make_horizon(), make_horizon()
    seed(a)
    make_horizon.clock.t += 11  # a's lease ran out; b renews at its pass
    b.renew_membership()
    b.roomba()
    assert trimmed(b) == set(NAMES)
    assert b.member_info()["members"] == 1
