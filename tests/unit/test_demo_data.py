"""The demo's data gives luminosity something to find, and its story has the shape the
docs tell (no Redis: the demo's own generator and luminosity's pure correlation).

Why luminosity stored no correlation for the demo's anomalies before: every injection
moved one metric alone, and a window whose last point spikes correlates with nothing
that did not spike at that point.  Injections now move a metric and its partner."""

from __future__ import annotations

import numpy as np
import pytest

from skyline.analysis.algorithms.stepping import default_vector_detector
from skyline.analysis.ionosphere.matching import Mass, motif_compare, stack_series
from skyline.analysis.luminosity.correlate import Params, correlate
from skyline.analysis.mirage.judge import JudgeOptions, judge
from skyline.cli.demo import (
    DEFAULT_INTERVAL,
    HEIGHT,
    PARTNERS,
    PREFIX,
    REPEAT_POINTS,
    Demo,
    Injection,
    demo_metrics,
    early_in_bucket,
    partner_of,
)
from skyline.settings import load_settings
from skyline.store.rollups import downsample
from skyline.store.timeseries import Series

STEP = 10


def generated(demo: Demo, start: int, n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``n`` points of every demo metric from ``start``, as the demo sends them."""
    rows: dict[str, list[tuple[int, float]]] = {m.name: [] for m in demo.metrics}
    for k in range(n):
        ts = start + k * STEP
        for line in demo.lines(ts).decode().splitlines():
            name, value, stamp = line.split()
            rows[name].append((int(stamp), float(value)))
    return {
        name: (np.array([t for t, _ in r]), np.array([v for _, v in r])) for name, r in rows.items()
    }


def related(data, metric: str, at: int) -> list[str]:
    others = [(n, t, v) for n, (t, v) in data.items() if n != metric]
    outcome = correlate(data[metric], at, others, Params())
    assert outcome is not None
    return [c.metric for c in outcome.correlations]


def demo_with(injections: list[Injection]) -> Demo:
    demo = Demo(load_settings(env={}), interval=STEP, seed=5, say=lambda m: None)
    demo.injections = injections
    return demo


def test_an_injection_moves_its_partner_and_luminosity_finds_it():
    start, n = 1_790_000_000, 60
    at = start + 50 * STEP
    demo = demo_with([])
    latency = demo.metrics[0]
    partner = partner_of(latency, demo.metrics)
    assert partner is not None and partner.name == PREFIX + "shop.db.query_time_ms"
    demo.injections = [Injection(latency, "spike", at, at + STEP, partner)]
    assert related(generated(demo, start, n), latency.name, at) == [partner.name]


def test_without_a_partner_nothing_moves_with_it_the_cause_of_the_empty_correlations():
    start, n = 1_790_000_000, 60
    at = start + 50 * STEP
    demo = demo_with([])
    demo.injections = [Injection(demo.metrics[0], "spike", at, at + STEP)]
    assert related(generated(demo, start, n), demo.metrics[0].name, at) == []


def test_every_partner_is_a_demo_metric_and_random_injections_have_them():
    names = {m.name.removeprefix(PREFIX) for m in demo_metrics()}
    assert set(PARTNERS) <= names and set(PARTNERS.values()) <= names
    demo = Demo(load_settings(env={}), interval=STEP, seed=5, repeat_after=300, say=lambda m: None)
    demo.schedule(1_789_999_800.0)  # the start of a 600 s bucket
    first, repeat = demo.story
    assert (first.kind, repeat.kind) == ("timeout", "timeout") and HEIGHT["timeout"] > 10
    # 20 s into a 600 s bucket: both are early in one, 300 s apart or more
    assert first.metric is repeat.metric and first.start == 1_789_999_820.0
    assert 300 <= repeat.start - first.start < 300 + 600 and repeat.start % 600 <= 120
    paired = [i for i in demo.injections[2:50] if i.metric.name.removeprefix(PREFIX) in PARTNERS]
    assert paired and all(i.partner is not None for i in paired)
    # random anomalies start every ``every`` s after the first, away from the story's
    # metrics until the repeat has passed
    randoms = demo.injections[2:]
    assert randoms[0].start - first.start == demo.every
    story = {m.name for m in first.metrics}
    early = [i for i in randoms if i.start <= repeat.end + demo.every]
    assert early and not any(story & {m.name for m in i.metrics} for i in early)
    assert any(story & {m.name for m in i.metrics} for i in randoms)  # later, any metric


def test_the_repeat_comes_after_the_detectors_memory_whatever_panoramas_expiry():
    """Panorama stores a detection after training (tests/integration/test_panorama.py),
    so only the detector's memory sets the gap."""
    for expiry in ("120", "4000"):
        settings = load_settings(env={"SKYLINE__PANORAMA__EXPIRY": expiry})
        assert Demo(settings, interval=5, say=lambda m: None).repeat_after == REPEAT_POINTS * 5
        demo = Demo(settings, say=lambda m: None)
        assert demo.repeat_after == REPEAT_POINTS * DEFAULT_INTERVAL


def repeat_score(gap: int, step: float = DEFAULT_INTERVAL) -> tuple[float, float]:
    """The default detector's scores of the story's timeout and of its repeat ``gap``
    points later, after 2 h of backfill at the demo's interval (the analyzer judges a
    new metric's stored points first, so the detector has learned them)."""
    detector = default_vector_detector()
    demo = Demo(load_settings(env={}), interval=step, seed=5, say=lambda m: None)
    m = demo.metrics[0]
    state = detector.new_state(1)
    t0, first = 1_790_000_000, int(7200 / step) + 100
    out = []
    for k in range(first + gap + 1):
        t = t0 + k * step
        v = m.normal(t, demo.rng, step)
        if k in (first, first + gap):
            v += m.scale * HEIGHT["timeout"]
        score = detector.step(state, np.array([float(t)]), np.array([v]))[0]
        if k in (first, first + gap):
            out.append(float(score))
    return out[0], out[1]


def test_the_default_detector_flags_the_repeat_only_once_it_forgot_the_first():
    threshold = load_settings(env={}).analyzer.threshold
    for step in (DEFAULT_INTERVAL, 1.0):  # the demo's clock, and a fast one
        first, repeat = repeat_score(REPEAT_POINTS, step)
        assert first >= threshold and repeat >= threshold, (step, first, repeat)
        # sooner, the same timeout is no news to it: why the story waits REPEAT_POINTS
        assert repeat_score(90, step)[1] < threshold, step


@pytest.mark.parametrize("step", [DEFAULT_INTERVAL, 1.0])
def test_the_repeat_matches_the_trained_window_with_the_default_motifs(step):
    """The profile holds the window up to the first timeout; the repeat, REPEAT_POINTS
    later, is searched in it with ionosphere's default motif sizes and limits."""
    cfg = load_settings(env={}).ionosphere
    demo = Demo(load_settings(env={}), interval=step, seed=5, say=lambda m: None)
    m = demo.metrics[0]
    start, first = 1_790_000_000, 2000
    repeat = first + REPEAT_POINTS
    stamps = [start + k * step for k in range(repeat + 1)]
    for at in (first, repeat):
        demo.injections.append(Injection(m, "timeout", stamps[at], stamps[at] + step))
    values = np.array([demo.lines(t).decode().split("\n")[0].split()[1] for t in stamps], float)
    series, lengths = stack_series([values[: first + 1]])
    mass = Mass(series, lengths, max(cfg.motif_sizes))
    results = [motif_compare(values, mass, size, max_distance=cfg.motif_max_distance,
                             padding_percent=cfg.motif_range_padding_percent)
               for size in cfg.motif_sizes]  # fmt: skip
    assert results[0].size <= REPEAT_POINTS and results[0].matched[0], results[0]
    assert any(r.matched[0] for r in results)


def mirage_verdicts(start: float) -> list[tuple[float, bool, str]]:
    """The story scheduled from ``start`` and each of its timeouts judged as mirage
    judges it with the default settings: the day before it, in buckets of
    ``[mirage] rollup_resolution`` (means), the timeout's bucket last and ending at it."""
    settings = load_settings(env={})
    res, opts = settings.mirage.rollup_resolution, JudgeOptions.from_settings(settings)
    demo = Demo(settings, seed=3, say=lambda m: None)
    demo.schedule(start)
    first, repeat = demo.story
    stamps = np.arange(int(first.start) - 25 * 3600, int(repeat.start) + 1, demo.interval)
    m = first.metric  # its points as ``Demo.lines`` makes them, without the other metrics
    values = np.array([repeat.apply(t, first.apply(t, m.normal(t, demo.rng, demo.interval)))
                       for t in stamps.astype(float)])  # fmt: skip
    out = []
    for inj in demo.story:
        end = inj.start
        keep = (stamps <= end) & (stamps >= end - 24 * 3600 - res)
        buckets = downsample(stamps[keep], values[keep], res)
        recent = buckets.timestamps >= end - 24 * 3600
        judged = judge(Series(buckets.timestamps[recent], buckets.values[recent]), 24, res, opts)
        out.append((end % res, judged.cleared, judged.reason))
    return out


@pytest.mark.parametrize("offset", [0, 300, 590])
def test_mirage_confirms_the_storys_timeout_and_its_repeat(offset):
    """Whenever the demo starts in mirage's bucket, both timeouts come early in one, so
    mirage confirms the first (it is alerted) and the repeat (it reaches ionosphere,
    which silences it).  Late in a bucket the repeat was cleared by mirage instead."""
    start = 1_796_500_800 + offset - 20  # first_anomaly (20 s) lands `offset` into a bucket
    verdicts = mirage_verdicts(start)
    for where, cleared, reason in verdicts:
        assert where <= 120 and not cleared, verdicts
        assert "anomalous over 24 h" in reason


def test_a_repeat_late_in_its_bucket_is_what_mirage_clears():
    """Why the story waits for early bucket positions: the same two timeouts 465 s into
    their buckets (where the first live run of the demo put them) are cleared."""
    settings = load_settings(env={})
    demo = Demo(settings, seed=3, say=lambda m: None)
    res = settings.mirage.rollup_resolution
    assert early_in_bucket(1_796_500_800 + 465, res) == 1_796_500_800 + res + res // 10
    assert early_in_bucket(1_796_500_800 + 100, res) == 1_796_500_800 + 100
    assert demo.repeat_after == REPEAT_POINTS * demo.interval
    # a start that puts the first late in its bucket: the story waits for the next one,
    # and a random anomaly (away from the story's metrics) comes at first_anomaly instead
    start = 1_796_500_800 + 465 - demo.first_anomaly
    demo.schedule(start)
    assert demo.story[0].start == 1_796_500_800 + res + res // 10
    randoms = demo.injections[2:]
    assert randoms[0].start == start + demo.first_anomaly
    assert randoms[0].metric.name not in {m.name for m in demo.story[0].metrics}
