"""The one-line summary every channel puts in an alert."""

from __future__ import annotations

from skyline.alerting.base import Alert
from skyline.events.anomaly import AnomalyEvent


def _alert(**kw) -> Alert:
    base = dict(metric="web.latency", timestamp=1_700_000_000, value=170.0, source="analyzer",
                algorithms_run=("grubbs", "ks_test", "histogram_bins"), triggered=("grubbs", "ks_test"))  # fmt: skip
    return Alert(AnomalyEvent(**{**base, **kw}), "slack", "web", 3600, "http://x/anomaly/1")


def test_analyzer_summary_names_the_algorithms():
    text = _alert().summary()
    assert text == ("web.latency = 170.0 at 2023-11-14 22:13:20 UTC; anomalous to "
                    "grubbs, ks_test (2 of 3 run)")  # fmt: skip


def test_boundary_summary_says_which_limit_was_crossed():
    text = _alert(source="boundary", algorithms_run=("greater_than", "detect_drop_off_cliff"),
                  triggered=("greater_than", "detect_drop_off_cliff"),
                  scores={"greater_than.limit": 100.0, "greater_than.breaches": 3.0,
                          "greater_than.score": 1.7, "detect_drop_off_cliff.breaches": 1.0}).summary()  # fmt: skip
    assert text == ("web.latency = 170.0 at 2023-11-14 22:13:20 UTC; greater_than: above its "
                    "limit 100 (3 consecutive breaches); detect_drop_off_cliff: dropped off a "
                    "cliff (1 consecutive breach)")  # fmt: skip
    bare = _alert(source="boundary", triggered=("less_than",), algorithms_run=("less_than",))
    assert bare.summary().endswith("; less_than: below its limit")
