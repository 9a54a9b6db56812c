"""One pull of one source: ask for the window past the cursor, keep what is new, store it.

The window starts at the end of the last window answered, less the source's
``overlap`` and the ``lookback``; on a first pull (no cursor) it starts
``backfill_days`` back (or one interval back), and after an outage it reaches back
at most ``max_gap``.  So the gap an outage leaves is asked for on the next pass, and
``Cursors`` make sure that no point is stored twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from dataclasses import dataclass

import numpy as np
import redis

from skyline.ingest.vista import cursor
from skyline.ingest.vista.route import Delivered, check_points, deliver
from skyline.ingest.vista.sources import PulledSeries, Source, safe_name
from skyline.settings import Settings
from skyline.store.labels import NAME_LABEL, LabelIndex, label_set
from skyline.store.timeseries import TimeSeriesStore

DAY = 86400.0


@dataclass
class PullResult:
    start: float
    end: float
    fetched: int
    new: int
    metrics: int
    delivered: Delivered


def metric_name(source: Source, name: str) -> str:
    cfg = source.cfg
    metric = cfg.metric.replace("{name}", name)
    if cfg.namespace:
        metric = f"{cfg.namespace}.{metric}"
    return safe_name(metric)


def window(source: Source, cursors: cursor.Cursors, now: float, since: float | None) -> float:
    cfg = source.cfg
    if since is not None:
        return since
    if cursors.window_end is None:
        back = cfg.backfill_days * DAY if cfg.backfill_days else max(cfg.interval, cfg.step)
        return now - back
    start = cursors.window_end - max(source.overlap, float(cfg.lookback))
    return max(start, now - cfg.max_gap)


def pull(
    source: Source,
    store: TimeSeriesStore,
    client: redis.Redis,
    settings: Settings,
    now: float,
    *,
    since: float | None = None,
    index: LabelIndex | None = None,
) -> PullResult:
    """One pass of ``source`` up to ``now``; ``since`` forces the window's start (backfill).
    The label sets of labelled series delivered go to ``index`` (the label index)."""
    keys = store.keys
    name = source.cfg.name
    cursors = cursor.read(client, keys, name)
    start = window(source, cursors, now, since)
    source.rejected.clear()
    pulled = source.fetch(start, now)
    fetched = sum(len(s.timestamps) for s in pulled)
    rejected: Counter[str] = Counter(source.rejected)
    fresh = select_new(source, store, cursors, pulled, now=now, settings=settings,
                       rejected=rejected, force_check=since is not None)  # fmt: skip
    newest = {m: float(t.max()) for m, (t, _) in fresh.items() if len(t)}
    sets = labelled(source, pulled, fresh)
    if sets:  # before the points, so whoever reads them finds their labels
        (index or LabelIndex(client, keys)).register(sets)
    cursor.begin(client, keys, name)
    delivered = deliver(store, settings, fresh, now)
    delivered.rejected.update(rejected)
    cursor.commit(client, keys, name, max(now, cursors.window_end or 0.0), newest)
    return PullResult(
        start, now, fetched, sum(len(t) for t, _ in fresh.values()), len(fresh), delivered
    )


def labelled(
    source: Source, pulled: list[PulledSeries], delivered: Container[str]
) -> dict[str, dict[str, str]]:
    """Metric -> label set of the labelled series among those delivered."""
    out: dict[str, dict[str, str]] = {}
    for series in pulled:
        if series.labels:
            metric = metric_name(source, series.name)
            if metric in delivered and metric not in out:
                out[metric] = label_set(series.labels.get(NAME_LABEL, ""), series.labels)
    return out


def select_new(
    source: Source,
    store: TimeSeriesStore,
    cursors: cursor.Cursors,
    pulled: list[PulledSeries],
    *,
    now: float,
    settings: Settings,
    rejected: Counter[str],
    force_check: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric, the points newer than its cursor, plus older ones within the
    lookback (or all, after an interrupted pass or in a backfill) the store lacks;
    only the points that can be stored count (``route.check_points`` at ``now``), so
    that the cursors move past those only.  The others are counted into ``rejected``
    when they are new (after the last pass's window: the overlap and lookback ask for
    some points again on every pass, and a refused one is counted once).  A series whose
    name is another's once made safe (``/a?b`` and ``/a&b``) is refused
    (``name_collision``), not merged into it."""
    lookback = float(source.cfg.lookback)
    check_all = cursors.interrupted or force_check
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    to_check: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}  # metric -> the source's name of its series
    seen_until = None if check_all else cursors.window_end  # the last pass's window end
    for series in pulled:
        metric = metric_name(source, series.name)
        if origin.setdefault(metric, series.name) != series.name:
            rejected["name_collision"] += len(series.timestamps)
            continue
        t_in = np.floor(series.timestamps.astype(np.float64))
        # count only what the last pass was not asked (a NaN time is new)
        new = None if seen_until is None else ~(t_in <= seen_until)
        t, v, bad = check_points(t_in, series.values, now, settings, counted=new)
        rejected.update(bad)
        # a series may come back in several pieces (SQL rows, chunks): merge by metric
        if metric in out:
            t = np.concatenate((out[metric][0], t))
            v = np.concatenate((out[metric][1], v))
        t, idx = np.unique(t, return_index=True)  # one point per second, first seen
        v = v[idx]
        last = cursors.metrics.get(metric)
        if last is None or check_all:
            out[metric] = (t, v)
            if check_all or force_check:
                to_check[metric] = t
            continue
        newer = t > last
        late = (~newer) & (t > last - lookback) if lookback else np.zeros_like(newer)
        out[metric] = (t[newer | late], v[newer | late])
        if late.any():
            to_check[metric] = t[late]
    if to_check:
        stored = store.read_many(list(to_check))
        for metric in to_check:
            have = stored[metric].timestamps
            if not len(have):
                continue
            t, v = out[metric]
            keep = ~np.isin(t.astype(np.int64), have.astype(np.int64))
            out[metric] = (t[keep], v[keep])
    return {m: tv for m, tv in out.items() if len(tv[0])}
