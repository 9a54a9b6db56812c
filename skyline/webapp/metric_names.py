"""The metric names the Metrics page, its browser and /api/v1/metrics list: the
store's set of names, sorted, kept in the web process between requests.

Reading and sorting 100,000 names costs far more than a page may (docs/performance.md),
so the sorted list is re-read only when the set's size (SCARD, one cheap command per
request) has changed, or when it is older than ``max_age`` seconds (a name removed and
another added in between)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from fnmatch import translate

from skyline.store.timeseries import TimeSeriesStore


class MetricNames:
    def __init__(self, max_age: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._size = -1
        self._read_at = 0.0

    def all(self, store: TimeSeriesStore) -> list[str]:
        """Every name, sorted (the same list object until the set changes: do not modify)."""
        size = store.size()
        with self._lock:
            fresh = self.clock() - self._read_at < self.max_age
            if size == self._size and fresh:
                return self._names
        names = store.metrics()
        with self._lock:
            self._names, self._size, self._read_at = names, size, self.clock()
        return names

    def search(self, store: TimeSeriesStore, pattern: str) -> list[str]:
        """Names matching ``pattern``: a shell-style glob (``* ? [...]``), or without
        those characters a substring; sorted."""
        names = self.all(store)
        if not pattern:
            return names
        if not any(c in pattern for c in "*?["):
            return [n for n in names if pattern in n]
        match = re.compile(translate(pattern)).match
        return [n for n in names if match(n)]
