"""Validation of parsed items before they are buffered for the writers.

Every rejected item is counted by reason (``rejected.<reason>``, published as
self-metrics), a few per reason per minute are logged truncated and escaped, and
the item is dropped; the good items of the same batch go on.  Names are checked
once and remembered, since the same names arrive every minute: a valid name gets
a small integer id (its index in the name table) that the writers group by.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import cast

from skyline.ingest.horizon.buffer import PointBuffer
from skyline.ingest.horizon.parsing import Item, Malformed
from skyline.runtime.daemon import Counters
from skyline.store.datapoint import MAX_NAME_LENGTH, Reject, check_name, printable
from skyline.store.name_filter import NameFilter

MAX_FLOAT = 1.7976931348623157e308
SKIP = "skip"  # name-cache verdict: valid but on the skip list
_UNSEEN = object()
LOG_PER_REASON_PER_MINUTE = 5


class Intake:
    NAME_CACHE_LIMIT = 500_000  # valid (or skipped) names: each at most MAX_NAME_LENGTH
    REJECT_CACHE_LIMIT = 4096  # rejected names, kept apart so they cannot evict good ones

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
        self._verdicts: dict[str, object] = {}  # name -> id (int) or SKIP
        self._rejected: dict[str, Reject] = {}  # short rejected names -> reason
        self._table: list[str] = []  # id -> name; replaced, never mutated, when full
        self._logged: dict[str, int] = {}
        self._log_window = 0.0

    def items(self, items: Iterable[Item]) -> int:
        """Validate and buffer items; returns how many were accepted."""
        now = self.clock()
        lo, hi = max(now - self.max_age, 1.0), now + self.max_future
        ids: list[int] = []
        stamps: list[float] = []
        values: list[float] = []
        verdicts = self._verdicts
        for name, ts, value in items:
            verdict = verdicts.get(name, _UNSEEN) if type(name) is str else Reject.NAME_CHARSET
            if verdict is _UNSEEN:
                name = cast(str, name)  # only a str name is looked up
                verdict = self._rejected.get(name) or self._check_name(name)
            if type(verdict) is not int:
                self._drop(cast(Reject, verdict), name)
                continue
            try:
                if type(value) is bool or type(ts) is bool:
                    raise TypeError
                v = float(value)  # type: ignore[arg-type]  # any object: errors caught below
                t = float(ts)  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                # OverflowError: an int beyond float range (a pickle can carry 10**400).
                self._drop(_number_reason(value, ts), (name, ts, value))
                continue
            if not -MAX_FLOAT <= v <= MAX_FLOAT:
                self._drop(Reject.VALUE_NOT_FINITE, (name, ts, value))
            elif not lo <= t <= hi:
                self._drop(_time_reason(t, hi), (name, ts, value))
            else:
                ids.append(verdict)
                stamps.append(t)
                values.append(v)
        if ids:
            self.counters.inc("datapoints_accepted", len(ids))
            self.buffer.add(ids, stamps, values, self._table)
        return len(ids)

    def _check_name(self, name: str) -> object:
        """Check a name not seen before and remember the verdict.  A rejected name is
        remembered only if it is short, in a small table of its own: a sender of
        unique 1 MB names must not grow memory (issue 15, item 4)."""
        reason = check_name(name)
        if reason is not None:
            if len(name) <= MAX_NAME_LENGTH:
                if len(self._rejected) >= self.REJECT_CACHE_LIMIT:
                    self._rejected = {}
                self._rejected[name] = reason
            return reason
        if len(self._verdicts) >= self.NAME_CACHE_LIMIT:
            self._verdicts = {}
            self._table = []  # batches keep the table they were built with
        verdict: object = SKIP
        if not self.filter.skipped(name):
            verdict = len(self._table)
            self._table.append(name)
        self._verdicts[name] = verdict
        return verdict

    def _drop(self, reason: Reject | str, raw: object) -> None:
        if reason == SKIP:
            self.counters.inc("skipped")
            return
        self.malformed(f"rejected.{reason}", raw)

    def malformed(self, counter: str, raw: object, n: int = 1, level: int = logging.INFO) -> None:
        """Count ``n`` bad items under ``counter`` and log a few of them (at most
        LOG_PER_REASON_PER_MINUTE per counter: a sender cannot flood the log)."""
        self.counters.inc(counter, n)
        now = self.clock()
        if now - self._log_window >= 60:
            self._log_window, self._logged = now, {}
        seen = self._logged.get(counter, 0)
        if seen < LOG_PER_REASON_PER_MINUTE:
            self._logged[counter] = seen + 1
            self.log.log(level, "dropped (%s): %s", counter, printable(raw))

    def malformed_input(
        self, reason: Malformed, raw: object, n: int = 1, level: int = logging.INFO
    ) -> None:
        self.malformed(f"malformed.{reason}", raw, n, level)


def _number_reason(value: object, ts: object) -> Reject:
    """Why ``float(value)`` or ``float(ts)`` failed; the value is judged first.

    An int beyond float range (OverflowError) is a value that is not finite, or a
    timestamp too far in the future (or past)."""
    value_reason = _float_failure(value)
    if value_reason == "overflow":
        return Reject.VALUE_NOT_FINITE
    if value_reason:
        return Reject.VALUE_NOT_NUMERIC
    if _float_failure(ts) == "overflow" and isinstance(ts, int):
        return Reject.TIMESTAMP_IN_FUTURE if ts > 0 else Reject.TIMESTAMP_TOO_OLD
    return Reject.TIMESTAMP_NOT_NUMERIC


def _float_failure(raw: object) -> str:
    """'' if ``float(raw)`` works, 'overflow' or 'not_numeric' if it does not."""
    if type(raw) is bool:
        return "not_numeric"
    try:
        float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "not_numeric"
    except OverflowError:
        return "overflow"
    return ""


def _time_reason(t: float, hi: float) -> Reject:
    if t != t:  # NaN
        return Reject.TIMESTAMP_NOT_NUMERIC
    return Reject.TIMESTAMP_IN_FUTURE if t > hi else Reject.TIMESTAMP_TOO_OLD
