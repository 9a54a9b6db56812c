"""Graph thinning keeps each bucket's lowest and highest point: compared with a slow,
obviously correct twin on random and hand-picked series."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.webapp.thinning import extremes


def slow_extremes(ts: np.ndarray, vs: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    if len(ts) <= 2 * buckets:
        return ts, vs
    keep: set[int] = set()
    n = len(ts)
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        idx = list(range(lo, hi))
        keep.add(min(idx, key=lambda i: (vs[i], i)))
        keep.add(min(idx, key=lambda i: (-vs[i], i)))
    order = sorted(keep)
    return ts[order], vs[order]


CASES = [
    ("flat", np.full(1000, 3.0), 10),
    ("one spike", np.r_[np.zeros(500), [100.0], np.zeros(499)], 7),
    ("one dip", np.r_[np.ones(333), [-5.0], np.ones(666)], 13),
    ("ties inside buckets", np.tile([1.0, 2.0, 2.0, 1.0], 250), 9),
    ("ramp", np.arange(1000, dtype=float), 100),
    ("short", np.arange(10, dtype=float), 5),
    ("odd sizes", np.sin(np.arange(1001)), 333),
]


@pytest.mark.parametrize(("name", "values", "buckets"), CASES, ids=[c[0] for c in CASES])
def test_hand_picked_series_match_the_slow_twin(name, values, buckets):
    ts = np.arange(len(values), dtype=np.int64) * 60 + 1_700_000_000
    got, want = extremes(ts, values, buckets), slow_extremes(ts, values, buckets)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_random_series_match_the_slow_twin():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, buckets = int(rng.integers(1, 3000)), int(rng.integers(1, 400))
        values = np.round(rng.normal(size=n) * 3)  # rounded: many ties
        ts = np.cumsum(rng.integers(1, 5, size=n))
        got, want = extremes(ts, values, buckets), slow_extremes(ts, values, buckets)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (n, buckets)


def test_a_one_point_spike_survives_any_thinning():
    values = np.zeros(86_400)
    values[12_345] = 8000.0  # the demo's timeout in a day of 1 s points
    ts, vs = extremes(np.arange(86_400), values, 2500)
    assert len(ts) <= 5000 and 12_345 in ts and vs.max() == 8000.0
