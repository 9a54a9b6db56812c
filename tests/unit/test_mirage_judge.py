"""Mirage's decision on a window of history, and the metric name -> PromQL rule."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.mirage.judge import JudgeOptions, judge, similar_daily_peaks
from skyline.analysis.mirage.remote import promql
from skyline.settings import Settings
from skyline.store.timeseries import Series

RES = 600
DAY = 86400
T0 = 1_700_000_000 - 1_700_000_000 % DAY


def week(seed: int = 3, days: int = 7) -> Series:
    """A week of 10-minute buckets around 100, the last bucket at 14:00."""
    rng = np.random.default_rng(seed)
    end = T0 + days * DAY + 14 * 3600
    t = end - RES * np.arange(days * 144)[::-1]
    return Series(t.astype(np.int64), 100 + rng.normal(0, 2, len(t)))


def options(**changes) -> JudgeOptions:
    settings = Settings.model_validate({"mirage": changes}) if changes else Settings()
    return JudgeOptions.from_settings(settings)


def with_daily_peak(s: Series, height: float, days: range) -> Series:
    v = s.values.copy()
    for day in days:
        v[len(v) - 1 - day * 144] = height
    return Series(s.timestamps, v)


def test_a_daily_peak_flagged_by_the_ensemble_is_cleared_by_the_override():
    s = with_daily_peak(week(), 300.0, range(0, 7))
    no_override = judge(s, 168, RES, options(daily_peaks=0))
    assert not no_override.cleared and "anomalous over 168 h" in no_override.reason
    j = judge(s, 168, RES, options())
    assert j.cleared and j.reason.startswith("recurs daily: 6 similar peaks")
    assert j.detail["daily_peaks"] == 6 and j.detail["window_points"] == 7 * 144


def test_too_few_similar_days_or_peaks_elsewhere_do_not_clear():
    assert not judge(with_daily_peak(week(), 300.0, range(0, 3)), 168, RES, options()).cleared
    # peaks at another time of day than the anomaly's are not the same pattern
    s = with_daily_peak(week(), 300.0, range(1, 7))
    shifted = np.roll(s.values, -30)  # the old peaks now 5 h earlier in the day
    shifted[-1] = 300.0
    assert similar_daily_peaks(Series(s.timestamps, shifted), 3600, 0.2) == 0


def test_a_level_shift_is_confirmed():
    s = week()
    v = s.values.copy()
    v[-3:] = 160.0
    j = judge(Series(s.timestamps, v), 168, RES, options())
    assert not j.cleared and j.reason.startswith("anomalous over 168 h at 600 s")
    assert len(j.detail["triggered"]) >= 6


def test_a_small_excursion_of_a_large_level_is_not_similar_to_noise():
    """20 % is of the excursion from the median, not of the value."""
    s = week()
    v = s.values + 10_000
    v[-1] = 10_030.0
    assert similar_daily_peaks(Series(s.timestamps, v), 3600, 0.2) == 0


def test_normal_in_the_long_window_is_cleared():
    s = week()
    v = s.values.copy()
    v[-1] = 103.0
    j = judge(Series(s.timestamps, v), 168, RES, options())
    assert j.cleared and j.reason.startswith("normal over 168 h at 600 s:")


@pytest.mark.parametrize("days", [0.2, 3])
def test_insufficient_history_is_confirmed_never_dropped(days):
    s = week(days=7)
    n = int(days * 144)
    j = judge(Series(s.timestamps[-n:], s.values[-n:]), 168, RES, options())
    assert not j.cleared and j.reason.startswith(f"insufficient history: {n} of 1008")


def test_a_boring_window_is_confirmed_unjudged():
    s = week()
    j = judge(Series(s.timestamps, np.full(len(s), 5.0)), 168, RES, options())
    assert not j.cleared and "could not judge" in j.reason


@pytest.mark.parametrize(
    "name, query",
    [
        ("node_load1", "node_load1"),
        ('up{job="node"}', 'up{job="node"}'),
        ("web.api.latency", "web_api_latency"),
        (
            "tenant.http_requests_total.code=200.job=api",
            'http_requests_total{code="200",job="api"}',
        ),
        ("a.b-c.d", "a_b_c_d"),
    ],
)
def test_promql_mapping(name, query):
    assert promql(name) == query
