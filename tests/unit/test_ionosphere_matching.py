"""Ionosphere matching: the fast vectorised functions against slow, obviously
correct twins, on random and hand-picked inputs, and the percent rule's edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skyline.analysis.ionosphere.matching import (
    Mass,
    features_compare,
    mass_distances,
    motif_compare,
    percent_different,
    stack_series,
)


# Slow twins ---------------------------------------------------------------------------
def slow_percent_different(calc: float, fp: float) -> float:
    if calc == fp == 0:
        return 0.0
    if fp == 0:
        return math.inf
    return abs(calc - fp) / abs(fp) * 100.0


def slow_features(calc: dict[int, float], profile: dict[int, float], similar: float,
                  min_common: int) -> tuple[float, int, bool]:  # fmt: skip
    common = sorted(set(calc) & set(profile))
    cs = sum(calc[i] for i in common)
    fs = sum(profile[i] for i in common)
    pd = slow_percent_different(cs, fs)
    ok = len(common) >= min_common and (abs(cs - fs) < 1.5e-6 or pd < similar)
    return pd, len(common), ok


def slow_znorm_distance(a: np.ndarray, b: np.ndarray) -> float:
    m = len(a)
    sa, sb = a.std(), b.std()
    flat_a = sa * sa < 1e-10 * max(1.0, float(np.abs(a - a.mean()).max()) ** 2)
    flat_b = sb * sb < 1e-10 * max(1.0, float(np.abs(b - b.mean()).max()) ** 2)
    if flat_a and flat_b:
        return 0.0
    if flat_a or flat_b:
        return 1.0
    za, zb = (a - a.mean()) / sa, (b - b.mean()) / sb
    return float(np.sqrt(np.sum((za - zb) ** 2)) / np.sqrt(m))


def slow_mass(rows: list[np.ndarray], query: np.ndarray) -> list[list[float]]:
    m = len(query)
    return [[slow_znorm_distance(query, r[j : j + m]) for j in range(len(r) - m + 1)] for r in rows]


def as_vector(d: dict[int, float], n: int) -> np.ndarray:
    v = np.full(n, np.nan)
    for i, x in d.items():
        v[i] = x
    return v


# Tests --------------------------------------------------------------------------------
@pytest.mark.parametrize(("calc", "fp", "expected"), [
    (0.0, 0.0, 0.0), (1.0, 0.0, math.inf), (110.0, 100.0, 10.0), (-110.0, -100.0, 10.0),
    (-90.0, 100.0, 190.0), (100.0, -100.0, 200.0), (5.0, 5.0, 0.0)])  # fmt: skip
def test_percent_different_edges(calc, fp, expected):
    assert percent_different(np.array([calc]), np.array([fp]))[0] == expected
    assert slow_percent_different(calc, fp) == expected


def test_features_compare_equals_its_twin_on_random_profiles():
    rng = np.random.default_rng(1)
    n = 40
    for _ in range(30):
        calc = {i: float(rng.normal(0, 100)) for i in range(n) if rng.random() < 0.8}
        profiles = []
        for _ in range(rng.integers(1, 12)):
            p = {i: v * (1 + rng.normal(0, 0.01)) for i, v in calc.items() if rng.random() < 0.9}
            p.update(
                {i: float(rng.normal()) for i in range(n) if i not in calc and rng.random() < 0.3}
            )
            profiles.append(p)
        res = features_compare(as_vector(calc, n), np.stack([as_vector(p, n) for p in profiles]),
                               percent_similar=1.0, min_common=5)  # fmt: skip
        for k, p in enumerate(profiles):
            pd, common, ok = slow_features(calc, p, 1.0, 5)
            assert res.common[k] == common
            assert res.percent_different[k] == pytest.approx(pd, rel=1e-9, abs=1e-12)
            assert bool(res.matched[k]) is ok


def test_features_hand_picked_cases():
    calc = np.array([1.0, 2.0, np.nan, 4.0])
    profiles = np.array([
        [1.0, 2.0, 9.0, 4.0],        # same on common ids: match
        [1.0, 2.0, np.nan, 4.05],    # 0.71 % off: match (< 1 %)
        [1.0, 2.0, np.nan, 4.2],     # 2.7 % off: no match
        [np.nan, np.nan, 5.0, np.nan],  # nothing in common: no match
        [-1.0, -2.0, np.nan, 3.0],   # sums 0 vs 7 -> inf % different
    ])  # fmt: skip
    res = features_compare(calc, profiles, percent_similar=1.0, min_common=1)
    assert res.matched.tolist() == [True, True, False, False, False]
    assert res.common.tolist() == [3, 3, 3, 0, 3]
    assert math.isinf(res.percent_different[4])  # 7 vs a profile sum of 0


def test_negative_sums_and_zero_sums():
    res = features_compare(np.array([-5.0, 0.0]), np.array([[-5.02, 0.0], [5.0, 0.0]]),
                           percent_similar=1.0)  # fmt: skip
    assert res.matched.tolist() == [True, False]
    zero = features_compare(np.array([1.0, -1.0]), np.array([[2.0, -2.0]]), percent_similar=1.0)
    assert zero.matched.tolist() == [True]  # 0 vs 0: both sums zero, 0 % different


def test_per_feature_tolerance_is_stricter_than_the_sum():
    calc = np.array([100.0, 50.0, 10.0])
    prof = np.array([[110.0, 40.0, 10.0]])  # same sum, two features 10-20 % off
    assert features_compare(calc, prof, percent_similar=1.0).matched[0]
    strict = features_compare(calc, prof, percent_similar=1.0, tolerance_percent=5.0,
                              tolerance_share=0.9)  # fmt: skip
    assert not strict.matched[0]


def test_mass_distances_equal_the_twin_on_random_and_hand_picked_series():
    rng = np.random.default_rng(7)
    for trial in range(12):
        rows = [rng.normal(0, 1, rng.integers(30, 90)).cumsum() * 10.0 ** rng.integers(-3, 6)
                for _ in range(rng.integers(1, 6))]  # fmt: skip
        if trial % 3 == 0:
            rows.append(np.concatenate([np.full(25, 3.0), rng.normal(0, 1, 30)]))  # flat part
        m = int(rng.integers(4, 25))
        query = rng.normal(0, 1, m).cumsum() if trial % 4 else np.full(m, 2.0)
        series, lengths = stack_series(rows)
        fast = mass_distances(series, lengths, query)
        slow = slow_mass(rows, query)
        for i, expected in enumerate(slow):
            assert fast[i, : len(expected)] == pytest.approx(expected, abs=1e-6)
            assert np.isinf(fast[i, len(expected) :]).all()


def test_mass_finds_an_embedded_shape_at_distance_zero():
    x = np.sin(np.arange(300) / 9.0)
    query = x[120:160] * 3 + 10  # same shape, other scale and level
    d = mass_distances(x[None, :], np.array([300]), query)[0]
    assert int(np.argmin(d)) == 120 and d[120] == pytest.approx(0, abs=1e-6)


def test_motif_needs_distance_and_range():
    t = np.arange(1000)
    profile = np.sin(2 * np.pi * t / 100) * 10 + 50
    series, lengths = stack_series([profile])
    same = np.sin(2 * np.pi * (t + 37) / 100) * 10 + 50
    r = motif_compare(same, Mass(series, lengths, 180), 180, max_distance=0.3, padding_percent=10)
    assert r.matched[0] and r.distance[0] < 0.05
    taller = same * 3 - 100  # the same shape at another level and amplitude: out of range
    r = motif_compare(taller, Mass(series, lengths, 180), 180, max_distance=0.3, padding_percent=10)
    assert r.distance[0] < 0.05 and not r.in_range[0] and not r.matched[0]
    spiky = same.copy()
    spiky[-5:] += 40
    r = motif_compare(spiky, Mass(series, lengths, 180), 180, max_distance=0.3, padding_percent=10)
    assert not r.matched[0]


def test_motif_skips_profiles_too_short_for_the_size():
    series, lengths = stack_series([np.arange(100.0), np.arange(500.0)])
    r = motif_compare(
        np.arange(1000.0), Mass(series, lengths, 180), 180, max_distance=1, padding_percent=1e9
    )
    assert np.isinf(r.distance[0]) and not r.matched[0]
    assert r.matched[1]


def test_mass_distances_equal_mass_ts_mass2():
    """The reference's library (mass_ts, what its inference used) as a third opinion."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mass_ts warns that GPU support is not installed
        import mass_ts

    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.normal(0, 1, int(rng.integers(200, 600))).cumsum()
        q = rng.normal(0, 1, int(rng.integers(10, 120))).cumsum()
        expected = np.real(mass_ts.mass2(x, q)) / np.sqrt(len(q))
        got = mass_distances(x[None, :], np.array([len(x)]), q)[0]
        assert got == pytest.approx(expected, abs=1e-7)
