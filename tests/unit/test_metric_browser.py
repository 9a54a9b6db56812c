"""The metric browser's tree level (one bisection per child) against an obvious
slow twin on random dotted names, and its page arithmetic."""

from __future__ import annotations

import random

import pytest

from skyline.webapp.metric_browser import BadPage, level, page_of, parent, parse_page, polyline


def slow_level(names: list[str], prefix: str) -> tuple[list[tuple[str, int]], list[str]]:
    counts: dict[str, int] = {}
    leaves = []
    for name in names:
        if not name.startswith(prefix):
            continue
        head, dot, _ = name[len(prefix) :].partition(".")
        if dot and head:
            counts[head] = counts.get(head, 0) + 1
        else:
            leaves.append(name)
    return sorted(counts.items()), leaves


def test_level_matches_the_slow_twin_on_random_names():
    rng = random.Random(7)
    parts = ["a", "b", "a-b", "a.", "", "c/d", "ä", "skyline", "0"]
    for _ in range(500):
        names = sorted({".".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
                        for _ in range(rng.randint(0, 40))})  # fmt: skip
        for prefix in ("", "a.", "b.", "a.a.", "a-b.", "skyline.", "zz."):
            got = level(names, prefix)
            assert (got.folders, got.leaves) == slow_level(names, prefix), (names, prefix)


def test_level_of_a_small_tree():
    names = sorted(["a", "a.b", "a.b.c", "a.c", "b.x.y", "skyline.h.x", "a.b.d.e"])
    root = level(names, "")
    assert root.folders == [("a", 4), ("b", 1), ("skyline", 1)] and root.leaves == ["a"]
    assert level(names, "a.b.").folders == [("d", 1)]
    assert parent("a.b.") == "a." and parent("a.") == ""


def test_pages_and_their_errors():
    assert page_of(list(range(7)), 3, 3) == ([6], 3)
    assert page_of([], 1, 3) == ([], 1)
    with pytest.raises(BadPage, match=r"page: 4 is past the last page \(3\)"):
        page_of(list(range(7)), 4, 3)
    assert parse_page(None) == 1 and parse_page("12") == 12
    for bad in ("0", "-1", "1e3", "٣", "²", "9" * 40, " 1", "x"):
        with pytest.raises(BadPage, match="is not a whole number"):
            parse_page(bad)


def test_polyline_of_one_point_and_of_a_flat_series():
    import numpy as np

    one = polyline(np.array([100.0]), np.array([5.0]))
    assert len(one.split()) == 2  # a short stroke, so it shows
    flat = polyline(np.arange(10.0), np.full(10, 3.0))
    assert {p.split(",")[1] for p in flat.split()} == {"14.0"}  # mid-height
    assert polyline(np.array([]), np.array([])) == ""


def test_a_thinned_sparkline_keeps_a_spike():
    import numpy as np

    ts = np.arange(10_000.0)
    vs = np.zeros(10_000)
    vs[4321] = 50.0  # one point in 10,000
    points = polyline(ts, vs).split()
    assert len(points) <= 120
    assert min(float(p.split(",")[1]) for p in points) == 2.0  # the top of the box
