"""Luminosity's vectorised cross-correlation against LinkedIn luminol (the slow twin).

luminol's CrossCorrelator scales each series by its max (no effect on r for positive
data), and tries the shifts range(-p, p) where p comes from a binary search over
``max_shift_seconds``; its coefficient is the largest r over those shifts.  So the twin
comparison is: our r at every shift in luminol's range, maximised, equals luminol's
coefficient, at the same shift in seconds.  luminol's shifted coefficient uses a signed
penalty (it rewards positive shifts); ours is symmetric, so that is compared with
luminol's formula applied to our r."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.luminosity.correlate import (
    Params,
    clean,
    correlate,
    cross_correlation,
    is_flat,
    resample,
)
from tests.luminol_compat import correlator, install

STEP = 60
T0 = 1_700_000_000
TOL = 1e-9


def grid(n: int, step: int = STEP) -> np.ndarray:
    return T0 + step * np.arange(n, dtype=np.int64)


def luminol_result(t: np.ndarray, a: np.ndarray, b: np.ndarray, max_shift_s: int):
    Correlator = correlator()
    ts_a = dict(zip(t.tolist(), a.tolist(), strict=True))
    ts_b = dict(zip(t.tolist(), b.tolist(), strict=True))
    c = Correlator(ts_a, ts_b, algorithm_params={"max_shift_seconds": max_shift_s})
    return c.get_correlation_result()


def luminol_steps(t: np.ndarray, max_shift_s: int) -> int:
    """luminol's p: the shifts it tries are range(-p, p) (its own binary search)."""
    install()
    from luminol.algorithms.correlator_algorithms.cross_correlator import CrossCorrelator
    from luminol.modules.time_series import TimeSeries

    ts = TimeSeries(dict.fromkeys(t.tolist(), 1.0))
    return CrossCorrelator(ts, ts, max_shift_seconds=max_shift_s)._find_allowed_shift(t.tolist())


def assert_twins(a: np.ndarray, b: np.ndarray, shift_steps: int) -> None:
    t = grid(len(a))
    lum = luminol_result(t, a, b, shift_steps * STEP)
    p = luminol_steps(t, shift_steps * STEP)
    r = cross_correlation(a, b[None, :], p)[0]
    ours = r[: 2 * p]  # shifts -p .. p-1, luminol's range
    best = int(np.argmax(ours))
    assert abs(ours[best] - lum.coefficient) <= TOL
    d = best - p
    assert (t[abs(d)] - t[0]) * np.sign(d) == lum.shift
    delays = (t[np.abs(np.arange(-p, p))] - t[0]) * np.sign(np.arange(-p, p))
    signed = ours * (1 + delays / (shift_steps * STEP) * 0.05)
    assert abs(signed.max() - lum.shifted_coefficient) <= TOL


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_luminol_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    a = rng.normal(50, 5, n)
    b = 0.6 * np.roll(a, int(rng.integers(-3, 4))) + rng.normal(30, 3, n)
    assert_twins(a, b, int(rng.integers(1, 5)))


@pytest.mark.parametrize(
    "a,b",
    [
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]),
        ([5, 5, 5, 9, 5, 5, 5, 5, 5, 5, 5, 5], [1, 1, 1, 1, 1, 7, 1, 1, 1, 1, 1, 1]),
        ([1, 3, 2, 5, 4, 6, 5, 8, 7, 9], [9, 7, 8, 5, 6, 4, 5, 2, 3, 1]),
        ([10, 10, 10, 10, 50, 50, 50, 50], [3, 3, 3, 3, 3, 9, 9, 9]),
    ],
)
def test_agrees_with_luminol_on_hand_picked_inputs(a, b):
    assert_twins(np.array(a, float), np.array(b, float), 2)


def test_a_shifted_copy_is_found_with_its_shift():
    rng = np.random.default_rng(7)
    t = grid(40)
    base = rng.normal(100, 5, 45)
    anchor, later = base[5:], base[3:43]  # `later` repeats the anchor 2 steps after it
    out = correlate((t, anchor), int(t[-1]), [("later", t, later)], Params(window=40, max_shift=3))
    (c,) = out.correlations
    assert (c.metric, c.shift, c.shift_seconds) == ("later", 2, 2 * STEP)
    assert c.coefficient > 0.9 and c.shifted_coefficient == pytest.approx(
        c.coefficient * (1 - 2 / 3 * 0.05)
    )
    lum = luminol_result(t, anchor, later, 3 * STEP)
    assert lum.shift == 2 * STEP and lum.coefficient == pytest.approx(c.coefficient, abs=TOL)


def test_anti_correlated_is_kept_only_when_negative_is_on():
    t = grid(30)
    a = np.sin(np.arange(30) / 3) + 5
    others = [("opposite", t, 10 - a), ("same", t, 2 * a)]
    plain = correlate((t, a), int(t[-1]), others, Params())
    assert [c.metric for c in plain.correlations] == ["same"]
    both = correlate((t, a), int(t[-1]), others, Params(negative=True))
    coefs = {c.metric: c.coefficient for c in both.correlations}
    assert coefs["opposite"] == pytest.approx(-1.0) and coefs["same"] == pytest.approx(1.0)
    assert both.correlations[0].shift == 0 and both.correlations[1].shift == 0


def test_flat_and_too_short_are_skipped_without_dividing_by_zero():
    t = grid(30)
    a = np.arange(30, dtype=float)
    with np.errstate(all="raise"):
        out = correlate((t, a), int(t[-1]), [("flat", t, np.full(30, 0.1)),
                                             ("ok", t, a * 3)], Params())  # fmt: skip
    assert out.flat == 1 and [c.metric for c in out.correlations] == ["ok"]
    assert correlate((t, np.full(30, 7.3)), int(t[-1]), [("ok", t, a)], Params()) is None
    assert correlate((t[:5], a[:5]), int(t[4]), [("ok", t, a)], Params()) is None
    assert is_flat(np.array([1e9, 1e9 + 1e-6])) and not is_flat(np.array([1.0, 1.001]))


def test_nan_values_are_dropped_and_missing_data_is_incomplete():
    t = grid(30)
    a = np.sin(np.arange(30) / 4) * 10 + 50
    with_nan = a * 2
    with_nan[[3, 17]] = np.nan
    tc, vc = clean(t, with_nan)
    late = (t[10:], a[10:])  # no value at the window's start: incomplete
    out = correlate((t, a), int(t[-1]), [("gappy", tc, vc), ("late", *late)], Params())
    assert out.incomplete == 1 and out.compared == 1
    (c,) = out.correlations
    assert c.metric == "gappy" and c.coefficient > 0.95  # held values over the two gaps


def test_only_points_up_to_the_anomaly_are_used():
    t = grid(60)
    a = np.r_[np.sin(np.arange(30) / 3), np.zeros(30)] + 5
    b = np.r_[np.sin(np.arange(30) / 3), np.random.default_rng(1).normal(0, 1, 30)] + 5
    out = correlate((t, a), int(t[29]), [("b", t, b)], Params())
    assert out.correlations[0].coefficient == pytest.approx(1.0)


def test_other_timestamps_and_resolutions_are_sampled_on_the_anomaly_grid():
    t = grid(30)
    a = np.sin(np.arange(30) / 4) * 10 + 50
    fine_t = T0 - 600 + 10 * np.arange(30 * 6 + 60)  # 10 s resolution, same signal
    fine_v = np.interp(fine_t, t, a)
    coarse_t = T0 - 7 + 120 * np.arange(16)  # 120 s, offset by 7 s
    coarse_v = np.interp(coarse_t, t, a)
    out = correlate((t, a), int(t[-1]), [("fine", fine_t, fine_v), ("coarse", coarse_t, coarse_v)],
                    Params(threshold=0.8))  # fmt: skip
    coefs = {c.metric: c.coefficient for c in out.correlations}
    assert coefs["fine"] == pytest.approx(1.0) and coefs["coarse"] > 0.9


def test_resample_holds_the_latest_value_and_looks_back_one_span():
    g = np.array([1000, 1060, 1120], np.int64)
    m = resample(g, [(np.array([990, 1070]), np.array([1.0, 2.0])),
                     (np.array([870]), np.array([5.0])),  # older than one span (120 s) back
                     (np.array([1060, 1120]), np.array([3.0, 4.0]))])  # fmt: skip
    assert m[0].tolist() == [1.0, 1.0, 2.0]
    assert np.isnan(m[1]).all()
    assert np.isnan(m[2, 0]) and m[2, 1:].tolist() == [3.0, 4.0]


def test_strongest_first_and_capped():
    t = grid(30)
    rng = np.random.default_rng(3)
    a = np.cumsum(rng.normal(0, 1, 30))
    others = [(f"m{k}", t, a + rng.normal(0, 0.05 * k, 30)) for k in range(1, 8)]
    out = correlate((t, a), int(t[-1]), others, Params(threshold=0.5, max_correlations=3))
    coefs = [c.coefficient for c in out.correlations]
    assert len(coefs) == 3 and coefs == sorted(coefs, reverse=True) and out.compared == 7


def test_the_compat_module_makes_luminol_work_on_numpy_2():
    assert int(np.__version__.split(".")[0]) >= 2
    install()
    from luminol.modules.time_series import TimeSeries

    assert TimeSeries({1: 1.0, 2: 3.0}).average() == 2.0  # numpy.asscalar inside


def test_settings_map_to_params_and_reject_min_points_above_window(tmp_path):
    from skyline.analysis.luminosity.agent import params_of
    from skyline.settings import SettingsError, load_settings

    conf = tmp_path / "skyline.conf"
    conf.write_text("[luminosity]\nwindow = 40\nthreshold = 0.95\nnegative = true\n")
    p = params_of(load_settings(conf, env={}).luminosity)
    assert (p.window, p.threshold, p.negative, p.max_shift) == (40, 0.95, True, 3)
    conf.write_text("[luminosity]\nwindow = 20\nmin_points = 25\n")
    with pytest.raises(SettingsError, match="min_points 25 is more than window 20"):
        load_settings(conf, env={})
