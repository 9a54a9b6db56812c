"""Validation of parsed items before they are buffered for the writers.

Every rejected item is counted by reason (``rejected.<reason>``, published as
self-metrics), a few per reason per minute are logged truncated and escaped, and
the item is dropped; the good items of the same batch go on.  Names are checked
once and remembered, since the same names arrive every minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from skyline.daemon import Counters
from skyline.datapoint import Reject, check_name, printable
from skyline.horizon.buffer import PointBuffer
from skyline.horizon.filters import NameFilter
from skyline.horizon.parsing import Item, Malformed

MAX_FLOAT = 1.7976931348623157e308
SKIP = "skip"  # name-cache verdict: valid but on the skip list
_UNSEEN = object()
LOG_PER_REASON_PER_MINUTE = 5


class Intake:
    NAME_CACHE_LIMIT = 500_000

    def __init__(
        self,
        *,
        buffer: PointBuffer,
        counters: Counters,
        name_filter: NameFilter,
        max_age: float,
        max_future: float,
        log: logging.Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.buffer = buffer
        self.counters = counters
        self.filter = name_filter
        self.max_age, self.max_future = max_age, max_future
        self.log = log
        self.clock = clock
        self._names: dict[str, object] = {}
        self._logged: dict[str, int] = {}
        self._log_window = 0.0

    def items(self, items: Iterable[Item]) -> int:
        """Validate and buffer items; returns how many were accepted."""
        now = self.clock()
        lo, hi = max(now - self.max_age, 1.0), now + self.max_future
        names: list[str] = []
        stamps: list[float] = []
        values: list[float] = []
        verdicts = self._names
        for name, ts, value in items:
            verdict = verdicts.get(name, _UNSEEN) if type(name) is str else Reject.NAME_CHARSET
            if verdict is _UNSEEN:
                verdict = self._check_name(name)
            if verdict is not None:
                self._drop(verdict, name)
                continue
            try:
                if type(value) is bool or type(ts) is bool:
                    raise TypeError
                v = float(value)
                t = float(ts)
            except (TypeError, ValueError):
                self._drop(
                    Reject.VALUE_NOT_NUMERIC
                    if _not_numeric(value)
                    else Reject.TIMESTAMP_NOT_NUMERIC,
                    (name, ts, value),
                )
                continue
            if not -MAX_FLOAT <= v <= MAX_FLOAT:
                self._drop(Reject.VALUE_NOT_FINITE, (name, ts, value))
            elif not lo <= t <= hi:
                self._drop(_time_reason(t, hi), (name, ts, value))
            else:
                names.append(name)
                stamps.append(t)
                values.append(v)
        if names:
            self.counters.inc("datapoints_accepted", len(names))
            self.buffer.add(names, stamps, values)
        return len(names)

    def _check_name(self, name: str) -> Reject | str | None:
        verdict: Reject | str | None = check_name(name)
        if verdict is None and self.filter.skipped(name):
            verdict = SKIP
        if len(self._names) >= self.NAME_CACHE_LIMIT:
            self._names.clear()
        self._names[name] = verdict
        return verdict

    def _drop(self, reason: Reject | str, raw: object) -> None:
        if reason == SKIP:
            self.counters.inc("skipped")
            return
        self.malformed(f"rejected.{reason}", raw)

    def malformed(self, counter: str, raw: object, n: int = 1) -> None:
        """Count ``n`` bad items under ``counter`` and log a few of them."""
        self.counters.inc(counter, n)
        now = self.clock()
        if now - self._log_window >= 60:
            self._log_window, self._logged = now, {}
        seen = self._logged.get(counter, 0)
        if seen < LOG_PER_REASON_PER_MINUTE:
            self._logged[counter] = seen + 1
            self.log.info("dropped (%s): %s", counter, printable(raw))

    def malformed_input(self, reason: Malformed, raw: object, n: int = 1) -> None:
        self.malformed(f"malformed.{reason}", raw, n)


def _not_numeric(value: object) -> bool:
    if type(value) is bool:
        return True
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    return False


def _time_reason(t: float, hi: float) -> Reject:
    if t != t:  # NaN
        return Reject.TIMESTAMP_NOT_NUMERIC
    return Reject.TIMESTAMP_IN_FUTURE if t > hi else Reject.TIMESTAMP_TOO_OLD
