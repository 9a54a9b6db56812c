"""One time format and units on counters (skyline/webapp/formats.py): the text the pages
show, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from skyline.webapp import formats

T = 1_765_000_000  # 2025-12-06 05:46:40 UTC


def test_a_time_is_iso_like_with_the_zone_and_its_age_on_hover():
    html = str(formats.when(T, now=T + 300))
    assert html == ('<time datetime="2025-12-06T05:46:40Z" title="5m ago">'
                    "2025-12-06 05:46:40 UTC</time>")  # fmt: skip
    html = str(formats.ago(T, now=T + 3 * 86400))
    assert html == ('<time datetime="2025-12-06T05:46:40Z" title="2025-12-06 05:46:40 UTC">'
                    "3d ago</time>")  # fmt: skip
    assert formats.when(None) == "-" and formats.ago(None) == "-"


@pytest.mark.parametrize(("age", "text"), [(0, "0s ago"), (119, "119s ago"), (120, "2m ago"),
                                           (7199, "119m ago"), (7200, "2h ago"),
                                           (172800, "2d ago"), (-50, "0s ago")])  # fmt: skip
def test_ages(age, text):
    assert formats.age_text(T, now=T + age) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (1.5192e-05, "15.2 µs"), (0.0123, "12.3 ms"), (0.5, "500 ms"), (2.5, "2.5 s"),
    (300, "5 min"), (0, "0 s"), (None, "-"), (math.nan, "-"), (math.inf, "-"),
])  # fmt: skip
def test_durations_carry_a_unit_and_no_exponent(seconds, text):
    assert formats.duration(seconds) == text


@pytest.mark.parametrize(("value", "text"), [
    (3.0, "3"), (1234567.0, "1,234,567"), (0.333333, "0.333"), (1.5192e-05, "< 0.001"),
    (-2e-9, "> -0.001"), (None, "-"), (math.nan, "-"), (2500.7, "2,501"),
])  # fmt: skip
def test_counts_are_rounded(value, text):
    assert formats.count(value) == text


def test_counters_by_name_and_rates():
    assert formats.counter(1.5192e-05, "correlate_time") == "15.2 µs"
    assert formats.counter(0.25, "roomba.run_time") == "250 ms"
    assert formats.counter(12.0, "checks") == "12"
    assert formats.rate(150, 60, "datapoints") == "2.5 datapoints/s"
    assert formats.rate(1e6, 60) == "16,667/s"
    assert formats.rate(5, 0) == "-" and formats.rate(None, 60) == "-"
