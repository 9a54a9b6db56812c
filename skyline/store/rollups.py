"""Rollups: every metric's down-sampled history, kept for weeks, for mirage.

The raw window (``[skyline] full_duration``, 24 h) is too short for mirage, which
re-judges an anomaly over days.  So each metric also has a rollup: one Redis string
``rollup:<resolution>:<metric>`` in the store's series format (``codec``): a sealed
block (pcodec, ``skyline.store.sealed``) then 12-byte records ``<uint32 bucket start,
float64 mean>``, strictly increasing, one per COMPLETE bucket ``[start, start +
resolution)`` that held data, the value being the mean of the raw points in that
bucket.  Rollups written before sealed blocks (records only) are read the same way.

Maintenance (``roll_up``, run from horizon's roomba) folds, per metric, the buckets
newer than the rollup's last record straight from the raw series:

- where it is: the rollup's ends (first 24 bytes, last record, length:
  ``codec.span``), so a pass is idempotent and a crash between passes loses nothing;
  the series' own ends tell whether a new bucket can be complete, and only then is
  the series read whole (about half the metrics per pass at a 300 s interval and
  600 s buckets);
- a bucket is complete when the raw series already has data at or after the next
  bucket's start plus ``lag`` seconds;
- a bucket is folded only if the raw series can hold all of it: its start is not
  before the series' first point (a bucket cut by roomba's trim is skipped);
- the new records are appended by a single-key Lua script that appends only if the
  last record is still the one the pass read (two passes at once never duplicate);
- records older than ``retention`` are dropped once the oldest is ``trim_grace``
  past it, and a rollup without a sealed block gets one: the kept records are
  sealed and written by a single-key script that writes only if the first 24 bytes
  are unchanged (every reseal changes them) and keeps records appended since;
- both scripts set the key's TTL to ``retention + trim_grace``: a rollup nobody
  appends to any more (its metric deleted, out of ``[mirage] rollups``' scope, or
  left behind by a change of ``rollup_resolution``) expires when all its records
  would have been trimmed anyway.

Which metrics have rollups is ``[mirage] rollups``
(``skyline.ingest.horizon.rollup_scope.RollupScope``): by default
only those an [[alerts]] rule with ``mirage_hours`` matches, and none while mirage
reads a remote history (graphite_url, prometheus_url).

Late data for a bucket already folded is not folded again (the rollup keeps the
mean it had when the bucket completed); ``history`` reads the raw series for the
last day, so late points there are seen anyway.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from skyline.store import raw as redis_raw
from skyline.store.cluster import run_script
from skyline.store.codec import span
from skyline.store.keys import RedisKeys
from skyline.store.sealed import CorruptSeries, is_sealed, read_header, seal
from skyline.store.timeseries import (
    HEAD_SIZE,
    MGET_CHUNK,
    RECORD,
    RECORD_SIZE,
    Series,
    TimeSeriesStore,
    to_series,
)

log = logging.getLogger(__name__)

TRIM_GRACE = 86400  # the oldest record may be this far past retention before a trim

_APPEND_LUA = """
local len = redis.call('STRLEN', KEYS[1])
local tail = ''
if len >= 12 then tail = redis.call('GETRANGE', KEYS[1], len - 12, len - 1) end
if tail ~= ARGV[1] then return -1 end
redis.call('APPEND', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_RESEAL_LUA = """
if redis.call('GETRANGE', KEYS[1], 0, 23) ~= ARGV[1] then return -1 end
local len = redis.call('STRLEN', KEYS[1])
local expected = tonumber(ARGV[2])
if len < expected then return -1 end
local tail = ''
if len > expected then tail = redis.call('GETRANGE', KEYS[1], expected, -1) end
local body = ARGV[3] .. tail
if string.len(body) == 0 then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], body, 'PX', ARGV[4])
return 1
"""


def decode(buf: bytes | None, metric: str = "?") -> Series:
    """A rollup as a Series (int64 bucket starts, float64 means); a damaged one is
    logged and read as empty (the next pass appends after it; its reseal drops it)."""
    try:
        return to_series(buf)
    except CorruptSeries as exc:
        log.error("rollup of %r cannot be read (%s): read as empty", metric, exc)
        return Series.empty()


def encode(starts: np.ndarray, means: np.ndarray) -> bytes:
    """Records to append (a whole rollup may also be records only: sealed later)."""
    rec = np.empty(len(starts), RECORD)
    rec["t"] = starts
    rec["v"] = means
    return rec.tobytes()


def downsample(t: np.ndarray, v: np.ndarray, resolution: int) -> Series:
    """Means of sorted points per bucket of ``resolution`` seconds (buckets without
    points are left out)."""
    if not len(t):
        return Series.empty()
    buckets = t - t % resolution
    first = np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))
    sums = np.add.reduceat(v, first)
    counts = np.diff(np.append(first, len(t)))
    return Series(buckets[first], sums / counts)


def safe_start(series: Series, resolution: int) -> int:
    """The first bucket start the series holds whole: a bucket starting before the
    series' first point may have lost points to a trim."""
    t0 = int(series.timestamps[0])
    return t0 if t0 % resolution == 0 else (t0 // resolution + 1) * resolution


def fold(series: Series, last: int | None, resolution: int, lag: int) -> Series:
    """The complete buckets of ``series`` newer than the rollup's ``last`` record."""
    if not len(series):
        return Series.empty()
    t, v = series.timestamps, series.values
    lo = safe_start(series, resolution)
    if last is not None:
        lo = max(lo, last + resolution)
    # bucket B is complete when t[-1] >= B + resolution + lag
    hi = (int(t[-1]) - lag) // resolution * resolution  # exclusive end of complete buckets
    if hi <= lo:
        return Series.empty()
    a, b = np.searchsorted(t, [lo, hi])
    return downsample(t[a:b], v[a:b], resolution)


def _last_start(tail: bytes | None) -> int | None:
    """The start of a rollup's last record as read by ``GETRANGE -12 -1``."""
    if not tail or len(tail) != RECORD_SIZE:
        return None
    return int(np.frombuffer(tail, RECORD)["t"][0])


def _ends(head: bytes, tail: bytes, size: int) -> tuple[int | None, int | None]:
    return span(head, tail, size) if size else (None, None)


class Rollups:
    """Maintain and read the rollups of one resolution."""

    def __init__(self, store: TimeSeriesStore, resolution: int) -> None:
        self.store = store
        self.redis = store.redis
        self.keys: RedisKeys = store.keys
        self.resolution = resolution
        self._append = self.redis.register_script(_APPEND_LUA)
        self._reseal = self.redis.register_script(_RESEAL_LUA)

    def key(self, metric: str) -> str:
        return self.keys.rollup(self.resolution, metric)

    def roll_up(
        self,
        metrics: Sequence[str],
        now: float,
        retention: int,
        lag: int,
        trim_grace: int = TRIM_GRACE,
    ) -> Counter[str]:
        """One pass over ``metrics``: fold complete buckets, trim old records.  Returns
        counts: metrics_read (series read whole), buckets_written, metrics_updated,
        trimmed, sealed (a rollup without a sealed block given one), raced, wrong_type
        (a rollup key holding another type, written by something else: left alone,
        and logged once per pass)."""
        out: Counter[str] = Counter()
        ttl_ms = (retention + trim_grace) * 1000
        refused: list[str] = []
        for i in range(0, len(metrics), MGET_CHUNK):
            chunk = metrics[i : i + MGET_CHUNK]
            out.update(self._roll_chunk(chunk, now - retention, trim_grace, lag, ttl_ms, refused))
        if refused:
            out["wrong_type"] = len(refused)
            log.error("rollup keys of %d metrics hold another type than a string (written by "
                      "something else than Skyline?), not rolled up: %s", len(refused),
                      ", ".join(refused[:5]))  # fmt: skip
        return +out

    def _roll_chunk(self, chunk: Sequence[str], cutoff: float, grace: int, lag: int,
                    ttl_ms: int, refused: list[str]) -> Counter[str]:  # fmt: skip
        out: Counter[str] = Counter()
        pipe = self.redis.pipeline(transaction=False)
        for metric in chunk:
            for key in (self.key(metric), self.keys.series(metric)):
                pipe.getrange(key, 0, HEAD_SIZE - 1)
                pipe.getrange(key, -RECORD_SIZE, -1)
                pipe.strlen(key)
        r = redis_raw.pipeline_reads(pipe)  # a key of another type: None
        rollup = [_ends(*r[k : k + 3]) for k in range(0, len(r), 6)]
        newest = [_ends(*r[k + 3 : k + 6])[1] for k in range(0, len(r), 6)]
        # a rollup key holding another type (its STRLEN None): left alone, counted
        wrong = [r[6 * n + 2] is None for n in range(len(chunk))]
        refused += [m for m, w in zip(chunk, wrong, strict=True) if w]
        # read whole only the series whose newest record completes a new bucket
        ready = [m for n, m in enumerate(chunk)
                 if not wrong[n] and self._ready(rollup[n][1], newest[n], lag)]  # fmt: skip
        raw = self.store.read_many(ready)
        out["metrics_read"] += len(ready)
        pipe = self.redis.pipeline(transaction=False)
        due: list[tuple[str, bool]] = []
        appended: list[int] = []  # buckets sent to _APPEND_LUA, per metric
        for n, metric in enumerate(chunk):
            head, tail = r[6 * n], r[6 * n + 1]
            if wrong[n]:
                continue
            first, last = rollup[n]
            new = fold(raw[metric], last, self.resolution, lag) if metric in raw else ()
            if len(new):
                body = encode(new.timestamps, new.values)  # type: ignore[union-attr]
                run_script(self._append, pipe, [self.key(metric)], [tail, body, ttl_ms],
                           self.store.cluster)  # fmt: skip
                appended.append(len(new))
            old = first is not None and first < cutoff - grace
            if old or (first is not None and not is_sealed(head)):
                due.append((metric, old))
        for buckets, result in zip(appended, pipe.execute(), strict=True):
            if result == 1:
                out["metrics_updated"] += 1
                out["buckets_written"] += buckets
            else:
                out["raced"] += 1
        if due:
            out.update(self._trim(due, cutoff, ttl_ms))
        return out

    def _ready(self, last: int | None, newest: int | None, lag: int) -> bool:
        """Whether the series' newest record (in arrival order: out-of-order data only
        delays a fold to a later pass) completes a bucket after the rollup's ``last``."""
        if newest is None:
            return False
        return last is None or newest >= last + 2 * self.resolution + lag

    def _trim(self, due: list[tuple[str, bool]], cutoff: float, ttl_ms: int) -> Counter[str]:
        """Reseal the ``due`` rollups (metric, whether old records are to go): the
        records from ``cutoff`` on, sealed, written if the rollup's head is unchanged."""
        out: Counter[str] = Counter()
        pipe = self.redis.pipeline(transaction=False)
        for metric, _ in due:  # single-key GETs: no command spans two metrics
            pipe.get(self.key(metric))
        bufs = [b or b"" for b in pipe.execute()]
        for (metric, _), buf in zip(due, bufs, strict=True):
            have = decode(buf, metric)
            keep = have.timestamps >= cutoff
            rewrites = read_header(buf).rewrites + 1 if is_sealed(buf) else 1
            body = seal(have.timestamps[keep], have.values[keep], rewrites) if keep.any() else b""
            args = [buf[:HEAD_SIZE], len(buf), body, ttl_ms]
            run_script(self._reseal, pipe, [self.key(metric)], args, self.store.cluster)
        for (_, old), result in zip(due, pipe.execute(), strict=True):
            out[("trimmed" if old else "sealed") if result >= 0 else "raced"] += 1
        return out

    # Reading ------------------------------------------------------------------------
    def read(self, metric: str) -> Series:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.key(metric))
        return decode(redis_raw.pipeline_reads(pipe)[0], metric)  # another type: None

    def history(self, metric: str, start: int, end: int) -> Series:
        """``metric`` in buckets of the resolution over ``[start, end]``: the rollup
        records before the raw series' first whole bucket, then the raw series
        down-sampled (the last bucket, holding ``end``, is partial: the mean of its
        points up to ``end``)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.key(metric))
        pipe.get(self.keys.series(metric))
        roll, raw = redis_raw.pipeline_reads(pipe)  # a key of another type: None
        return merge(decode(roll, metric), _series(metric, raw), start, end, self.resolution)


def _series(metric: str, raw: bytes | None) -> Series:
    try:
        return to_series(raw)
    except CorruptSeries as exc:
        log.error("series %r cannot be read (%s): history without it", metric, exc)
        return Series.empty()


def merge(older: Series, raw: Series, start: int, end: int, resolution: int) -> Series:
    """Buckets of ``older`` (already down-sampled: rollups or a remote fetch) before
    the raw series' first whole bucket, then ``raw`` down-sampled; only buckets whose
    start is in ``[start, end]``, and raw points at or before ``end``."""
    cut = safe_start(raw, resolution) if len(raw) else end + resolution
    t = older.timestamps
    keep = (t >= start) & (t < cut) & (t <= end)
    a, b = np.searchsorted(raw.timestamps, [max(cut, start - start % resolution), end + 1])
    recent = downsample(raw.timestamps[a:b], raw.values[a:b], resolution)
    in_window = recent.timestamps >= start
    return Series(
        np.concatenate((t[keep], recent.timestamps[in_window])),
        np.concatenate((older.values[keep], recent.values[in_window])),
    )


def history(store: TimeSeriesStore, metric: str, start: int, end: int, resolution: int) -> Series:
    """``Rollups(store, resolution).history(metric, start, end)``."""
    return Rollups(store, resolution).history(metric, start, end)
