"""Where mirage's window of history comes from: Graphite, Prometheus, the rollups, or
the raw series (a rule's ``mirage_resolution`` finer than the rollups).

With ``[mirage] graphite_url`` (tried first) or ``prometheus_url`` set, the window is
fetched from there, down-sampled to the rollup resolution, and its tail replaced by
the raw series from Redis (which has the newest points a remote store may still
lack).  One try of a fetch is cut by a watchdog ``remote_connect_timeout +
remote_read_timeout`` after it began, so a fetch takes at most ``remote_attempts``
times that plus short backoffs, which the settings keep below ``max_check_age``.  A
failed fetch is counted (``fetch_failures``, ``fetch_failures.<source>``), logged,
and the rollups are read instead; the returned note says so, and ends up in the
verdict's reason.  ``stop`` (mirage stopping) cuts the fetches under way: they raise
``Stopped`` (not a failure, no fallback) and their checks are abandoned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from skyline.analysis.mirage.fetch import FetchError, RemoteOptions, Stopped, Watchdog
from skyline.analysis.mirage.remote import fetch_graphite, fetch_prometheus
from skyline.runtime.daemon import Counters
from skyline.settings import Settings
from skyline.store.rollups import Rollups, downsample, merge
from skyline.store.timeseries import Series, TimeSeriesStore

log = logging.getLogger("skyline.mirage")


@dataclass(frozen=True)
class Window:
    series: Series
    source: str  # rollups, raw, graphite or prometheus
    note: str = ""  # why the configured remote source was not used


class HistorySource:
    """Reads a metric's window from the configured source, at the rollup resolution
    or a finer one."""

    def __init__(self, store: TimeSeriesStore, settings: Settings, counters: Counters) -> None:
        cfg = settings.mirage
        self.store, self.counters = store, counters
        self.resolution = cfg.rollup_resolution
        self.rollups = Rollups(store, self.resolution)
        self.remote = [(name, url) for name, url in
                       (("graphite", cfg.graphite_url), ("prometheus", cfg.prometheus_url)) if url]  # fmt: skip
        self.watchdog = Watchdog()
        self.options = RemoteOptions(cfg.remote_connect_timeout, cfg.remote_read_timeout,
                                     cfg.remote_max_bytes, cfg.remote_attempts,
                                     watchdog=self.watchdog)  # fmt: skip

    def stop(self) -> int:
        """Cut the fetches under way, refuse new ones; returns how many were cut."""
        return self.watchdog.stop()

    def window(self, metric: str, start: int, end: int, resolution: int | None = None) -> Window:
        """``metric`` over ``[start, end]`` in buckets of ``resolution`` (default and at
        most the rollups'); finer than the rollups, from the remote source or the raw
        series alone (the settings keep such a window within [skyline] full_duration)."""
        res = resolution or self.resolution
        note = ""
        if self.remote:
            name, url = self.remote[0]
            try:
                fetched = self._fetch(name, url, metric, start, end, res)
            except Stopped:
                raise  # mirage is stopping: the check is abandoned, not judged
            except FetchError as exc:
                self.counters.inc("fetch_failures")
                self.counters.inc(f"fetch_failures.{name}")
                log.warning("%s history of %s failed: %s; using the rollups", name, metric, exc)
                note = f"{name} fetch failed ({exc}): used the rollups"
            else:
                older = downsample(fetched.timestamps, fetched.values, res)
                series = merge(older, self.store.read(metric), start, end, res)
                self.counters.inc(f"history_source.{name}")
                return Window(series, name)
        if res < self.resolution:
            self.counters.inc("history_source.raw")
            series = merge(Series.empty(), self.store.read(metric), start, end, res)
            return Window(series, "raw", note)
        self.counters.inc("history_source.rollups")
        return Window(self.rollups.history(metric, start, end), "rollups", note)

    def _fetch(self, name: str, url: str, metric: str, start: int, end: int, res: int) -> Series:
        """The remote's points; ``FetchError`` when none lies in ``[start, end]`` (a
        reply of other times, or in milliseconds, would judge an empty window)."""
        if name == "graphite":
            got = fetch_graphite(url, metric, start, end, self.options)
        else:
            got = fetch_prometheus(url, metric, start, end, res, self.options)
        t = got.timestamps
        if not ((t >= start) & (t <= end)).any():
            raise FetchError(f"no datapoint in the window [{start}, {end}]")
        return got
