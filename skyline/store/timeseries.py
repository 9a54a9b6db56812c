"""The time-series store: the recent window of every metric in Redis.

Format (chosen by measurement, see docs/storage.md): one Redis string per
metric: a sealed block (``skyline.store.sealed``: a header with the rewrite count,
then the older points compressed with pcodec) followed by fixed-width 12-byte
records ``<uint32 timestamp, float64 value>`` little-endian.  Writers only ever
``APPEND`` records, so a write is one command however many points it carries.
Roomba (``trim_many``) rewrites a series sorted, de-duplicated (last write wins),
trimmed and sealed; the rewrite is a single-key Lua script that keeps any bytes
appended since it read the series, so no write is ever lost to a trim.

Incremental reads (``read_since``) fetch only the bytes past a cursor.  The
reader asks, in one pipeline, for the tail and *then* the first two records;
because a rewrite is atomic and always changes those first 24 bytes, a changed
head means the tail may be stale and the series is read whole instead.
``read_since_many`` does the same for many metrics, a pipeline per chunk.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import redis

from skyline.store import raw as redis_raw
from skyline.store.cluster import (
    execute_routed,
    is_cluster,
    mget,
    run_script,
)
from skyline.store.codec import (  # noqa: F401  (re-exported: the store's record format)
    ARENA_ROWS,
    HEAD_SIZE,
    RECORD,
    RECORD_SIZE,
    ChunkRow,
    DecodeArena,
    Series,
    decode,
    encode,
    encode_small,
    header,
    prepare,
    records,
    sort_dedupe,
    span,
    to_series,
    to_series_many,
)
from skyline.store.datapoint import Reject, Window, check_point
from skyline.store.incremental import (
    Cursor,
    SinceAsk,
    SinceChunk,
    answer_since,
    ask_since,
    read_since_chunk,
    series_commands,
)
from skyline.store.keys import RedisKeys
from skyline.store.sealed import CorruptSeries, is_sealed, read_header, seal

log = logging.getLogger(__name__)

MGET_CHUNK = 200  # keys per MGET: measured best with 100-200 (docs/storage.md)
DECODE_CHUNK = 1000  # series read_many decodes together (their raw bytes held till then)
READ_CHUNK = 500  # metrics per pipeline of read_since_many
CHANGED_TTL = 86400  # the changed set expires if no analyzer ever drains it

_REWRITE_LUA = """
local len = redis.call('STRLEN', KEYS[1])
local expected = tonumber(ARGV[1])
if len < expected then return -1 end
local tail = ''
if len > expected then tail = redis.call('GETRANGE', KEYS[1], expected, -1) end
local body = ARGV[2] .. tail
if string.len(body) == 0 then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], body)
return 1
"""

_DELETE_IF_UNCHANGED_LUA = """
if redis.call('STRLEN', KEYS[1]) == tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


@dataclass
class AppendResult:
    written: int
    rejected: list[tuple[object, Reject]]


class TimeSeriesStore:
    """Append, read, list, trim and delete metric series; Redis is the only state."""

    def __init__(self, client: redis.Redis, keys: RedisKeys,
                 companions: Callable[[str], Sequence[str]] | None = None) -> None:  # fmt: skip
        """``companions(metric)`` names keys that belong to a metric and are deleted
        with its series (``delete``, ``trim_many``), e.g. its rollup."""
        self.redis = client
        self.keys = keys
        self.companions = companions
        self.cluster = is_cluster(client)
        self._series_commands = series_commands(keys.series)
        self._rewrite = client.register_script(_REWRITE_LUA)
        self._delete_if_unchanged = client.register_script(_DELETE_IF_UNCHANGED_LUA)

    # Writing ------------------------------------------------------------------------
    def append(
        self,
        points: Iterable[tuple[str, float, float]],
        *,
        now: float | None = None,
        window: Window | None = None,
    ) -> AppendResult:
        """Append ``(metric, timestamp, value)`` points in one round trip.

        With ``now`` given, every point is validated against ``window`` first and
        invalid ones are returned as rejects (never written); without it the caller
        vouches that the points were validated already (the ingest hot path).
        """
        grouped: dict[str, tuple[list[float], list[float]]] = {}
        rejected: list[tuple[object, Reject]] = []
        win = window or Window()
        for name, ts, value in points:
            if now is not None:
                reason, ts_ok, value_ok = check_point(name, ts, value, now, win)
                if reason:
                    rejected.append(((name, ts, value), reason))
                    continue
                ts, value = ts_ok, value_ok
            entry = grouped.get(name)
            if entry is None:
                entry = grouped[name] = ([], [])
            entry[0].append(ts)
            entry[1].append(value)
        written = self.append_grouped(grouped)
        return AppendResult(written, rejected)

    def append_grouped(
        self, grouped: dict[str, tuple[list[float], list[float]]], *, changed: bool = False
    ) -> int:
        """Append pre-validated points already grouped per metric, in one round trip.

        With ``changed`` the names are also added to the changed set, from which the
        analyzer learns which metrics have new data.
        """
        if not grouped:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        n = 0
        series = self.keys.series
        for name, (ts, vs) in grouped.items():
            pipe.append(series(name), encode_small(ts, vs))
            n += len(ts)
        pipe.sadd(self.keys.metrics(), *grouped)
        if changed:
            pipe.sadd(self.keys.changed(), *grouped)
            pipe.expire(self.keys.changed(), CHANGED_TTL)
        pipe.execute()
        return n

    def append_batch(
        self,
        ids: Sequence[int] | np.ndarray,
        timestamps: Sequence[float] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        names: Sequence[str],
        *,
        changed: bool = False,
        announce: bool = True,
        refused: dict[str, int] | None = None,
    ) -> int:
        """Append a batch of pre-validated points given as metric ids into ``names``;
        returns how many were stored.

        The batch is grouped and encoded with numpy (one sort, one ``tobytes``); each
        metric gets one APPEND of its slice, all in one round trip.  ``announce``
        adds the names to the metrics set (a caller that knows they are there may
        skip it); ``changed`` adds them to the analyzer's changed set.  Redis refusing
        a command (full, read-only) raises its error reply after every other command
        of the batch ran: the caller retries the batch (an APPEND repeated stores its
        points twice, which every reader drops).  A series key that holds another type
        (something else wrote it) refuses only its metric's points: with ``refused``
        given they are left out of the count and recorded there (name -> points),
        else the error is raised too.
        """
        n = len(ids)
        if not n:
            return 0
        id_arr = np.asarray(ids, dtype=np.int64)
        order = np.argsort(id_arr, kind="stable")
        rec = np.empty(n, RECORD)
        rec["t"] = np.asarray(timestamps, dtype=np.float64)[order]
        rec["v"] = np.asarray(values, dtype=np.float64)[order]
        buf = memoryview(rec.tobytes())
        sorted_ids = id_arr[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
        ends = np.append(starts[1:], n) * RECORD_SIZE
        batch_names = [names[i] for i in sorted_ids[starts].tolist()]
        series = self.keys.series
        keys = [series(name).encode() for name in batch_names]
        commands = [
            redis_raw.append(key, buf[start:end])
            for key, start, end in zip(
                keys, (starts * RECORD_SIZE).tolist(), ends.tolist(), strict=True
            )
        ]
        encoded = [name.encode() for name in batch_names]
        if announce:
            keys.append(self.keys.metrics().encode())
            commands.append(redis_raw.command(b"SADD", keys[-1], *encoded))
        if changed:
            key = self.keys.changed().encode()
            keys += [key, key]
            commands.append(redis_raw.command(b"SADD", key, *encoded))
            commands.append(redis_raw.command(b"EXPIRE", key, b"%d" % CHANGED_TTL))
        replies = execute_routed(self.redis, keys, commands)  # one payload per node
        errors = [(j, r) for j, r in enumerate(replies) if isinstance(r, redis.ResponseError)]
        if not errors:
            return n
        appends = len(batch_names)  # the APPENDs come first, one per name
        fatal = [r for j, r in errors
                 if refused is None or j >= appends or not redis_raw.wrong_type(r)]  # fmt: skip
        if fatal or refused is None:
            raise fatal[0]
        for j, _ in errors:  # APPENDs to keys of another type: those points only
            points = int(ends[j] // RECORD_SIZE - starts[j])
            refused[batch_names[j]] = refused.get(batch_names[j], 0) + points
            n -= points
        return n

    # Reading ------------------------------------------------------------------------
    def metrics(self) -> list[str]:
        members = cast(set[bytes], self.redis.smembers(self.keys.metrics()))  # binary client
        return sorted(m.decode() for m in members)

    def size(self) -> int:
        """How many metrics the store holds (SCARD of the names set)."""
        return int(self.redis.scard(self.keys.metrics()))

    def last_timestamps(self, metrics: Sequence[str]) -> dict[str, int]:
        """Each metric's last record's timestamp (its newest point but for a late one
        not yet sorted in by roomba), read as roomba reads it; metrics without a series
        are left out."""
        out: dict[str, int] = {}
        for chunk, spans in self.spans(metrics):
            out.update((m, s[1]) for m, s in zip(chunk, spans, strict=True) if s[1] is not None)
        return out

    def spans(
        self, metrics: Sequence[str]
    ) -> Iterator[tuple[Sequence[str], list[tuple[int | None, int | None, int, bool]]]]:
        """Per chunk of ``MGET_CHUNK`` metrics, each series' first and last (in arrival
        order) timestamps, its length and whether it starts with a sealed block, read
        from its ends (``codec.span``): first ``HEAD_SIZE`` bytes, last record, STRLEN,
        one pipeline per chunk."""
        for i in range(0, len(metrics), MGET_CHUNK):
            chunk = metrics[i : i + MGET_CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for metric in chunk:
                key = self.keys.series(metric)
                pipe.getrange(key, 0, HEAD_SIZE - 1)
                pipe.getrange(key, -RECORD_SIZE, -1)
                pipe.strlen(key)
            r = redis_raw.pipeline_reads(
                pipe
            )  # a key of another type: None, read as an empty series
            yield chunk, [(*span(r[k] or b"", r[k + 1] or b"", r[k + 2] or 0), r[k + 2] or 0,
                           is_sealed(r[k] or b"")) for k in range(0, len(r), 3)]  # fmt: skip

    def read_raw(self, metric: str) -> bytes:
        """The metric's stored bytes; empty when it has none (or its key holds another
        type, as ``read_raw_many`` reads it)."""
        try:
            return cast(bytes | None, self.redis.get(self.keys.series(metric))) or b""
        except redis.ResponseError as exc:
            if not redis_raw.wrong_type(exc):
                raise
            return b""

    def read(self, metric: str) -> Series:
        return to_series(self.read_raw(metric))

    def read_raw_many(self, metrics: Sequence[str]) -> list[bytes | None]:
        """The raw values of ``metrics`` (None where missing), ``DECODE_CHUNK`` at a time
        (``MGET_CHUNK`` keys per MGET, one round trip per ``DECODE_CHUNK``)."""
        out: list[bytes | None] = []
        for i in range(0, len(metrics), DECODE_CHUNK):
            keys = [self.keys.series(m) for m in metrics[i : i + DECODE_CHUNK]]
            out += mget(self.redis, keys, MGET_CHUNK)
        return out

    def read_many(self, metrics: Sequence[str]) -> dict[str, Series]:
        """Prepared series of many metrics, read and decoded ``DECODE_CHUNK`` at a
        time: series of one length (sealed, or unsealed of one size) become rows of one
        arena, which the classic analysis takes as one block (a sweep slice is one such
        chunk)."""
        out: dict[str, Series] = {}
        arena = DecodeArena(min(len(metrics), ARENA_ROWS))
        for i in range(0, len(metrics), DECODE_CHUNK):
            part = metrics[i : i + DECODE_CHUNK]
            errors: list[tuple[int, str]] = []
            out.update(zip(part, to_series_many(self.read_raw_many(part), arena, errors),
                           strict=True))  # fmt: skip
            _log_corrupt([(part[k], why) for k, why in errors])
        return out

    def read_since(self, metric: str, cursor: Cursor | None) -> tuple[np.ndarray, Cursor, bool]:
        """Records that arrived after ``cursor``.

        Returns ``(records, new_cursor, whole)``: ``whole`` is True when the series was
        rewritten or replaced since the cursor (or there was none), and ``records`` is
        then the entire series rather than only the new part.
        """
        _, rec, new, whole = next(self.read_since_many({metric: cursor}))
        return rec, new, whole

    def read_since_many(
        self, cursors: Mapping[str, Cursor | None]
    ) -> Iterator[tuple[str, np.ndarray, Cursor, bool]]:
        """``read_since`` for many metrics: yields ``(metric, records, new_cursor,
        whole)`` in the order of ``cursors``, one pipeline per ``READ_CHUNK`` metrics
        (an idle pass costs a round trip per chunk, not per metric), then one more
        pipeline of GETs for the chunk's series found rewritten, read whole
        (``skyline.store.incremental``)."""
        names = list(cursors)
        for i in range(0, len(names), READ_CHUNK):
            chunk = names[i : i + READ_CHUNK]
            got = self.read_since_chunk(chunk, [cursors[m] for m in chunk])
            ends = np.cumsum(got.counts).tolist()
            for k, metric in enumerate(chunk):
                rec = got.records[ends[k] - int(got.counts[k]) : ends[k]]
                yield metric, rec, got.cursors[k], bool(got.whole[k])

    def read_since_chunk(
        self, metrics: Sequence[str], cursors: Sequence[Cursor | None]
    ) -> SinceChunk:
        """The new records of ``metrics`` past ``cursors``, all in one array
        (``skyline.store.incremental.read_since_chunk``); one pipeline, so callers
        chunk by ``READ_CHUNK``."""
        return read_since_chunk(self.redis, self._series_commands, metrics, cursors, _whole)

    def ask_since(self, metrics: Sequence[str], cursors: Sequence[Cursor | None]) -> SinceAsk:
        """``read_since_chunk`` in two halves: the commands, for a caller to send
        (with others, in one payload), then ``answer_since`` with their replies."""
        return ask_since(self._series_commands, metrics, cursors)

    def answer_since(
        self, ask: SinceAsk, replies: Sequence[Any], metrics: Sequence[str]
    ) -> SinceChunk:
        return answer_since(self.redis, ask, replies, metrics, _whole)

    # Trimming -----------------------------------------------------------------------
    def trim_many(
        self,
        metrics: Sequence[str],
        now: float,
        keep_seconds: int,
        grace: int,
        inactive_after: int,
        max_bytes: int = 4 << 20,
        companions: Callable[[str], Sequence[str]] | None = None,
    ) -> Counter[str]:
        """Trim, sort and de-duplicate series; delete inactive ones (and the keys
        ``companions(metric)`` -- default: the store's -- names with them, e.g. the
        metric's rollup, each by its own DEL after the series').

        A cheap first pass reads only each series' first record, last record and
        length; a series is read whole only when its first record is more than
        ``grace`` seconds past the ``keep_seconds`` window, its last record is older
        than ``inactive_after``, or it is larger than ``max_bytes``.  Then it is
        rewritten (or deleted), so a minutely metric is rewritten about once per grace
        period and readers rarely have to re-read whole.  Returns counts of outcomes:
        kept, rewritten, deleted, missing, raced, corrupt (a sealed block that cannot
        be read: logged, and the series rewritten with the raw records after it).
        """
        outcome: Counter[str] = Counter()
        companions = companions or self.companions
        for i in range(0, len(metrics), MGET_CHUNK):
            chunk = metrics[i : i + MGET_CHUNK]
            due = self._due_for_trim(
                chunk, now - keep_seconds - grace, now - inactive_after, max_bytes
            )
            outcome["kept"] += len(chunk) - len(due)
            if not due:
                continue
            pipe = self.redis.pipeline(transaction=False)
            actions: list[tuple[str, str]] = []
            for metric, raw in zip(due, self.read_raw_many(due), strict=True):
                action = self._plan_trim(
                    pipe, metric, raw or b"", now, keep_seconds, grace, inactive_after
                )
                actions.append((metric, action))
            results = pipe.execute() if len(pipe) else []
            gone: list[str] = []
            outcome.update(self._settle(actions, iter(results), gone))
            if companions and gone:
                self._delete_companions(gone, companions)
        return +outcome

    def _delete_companions(
        self, gone: list[str], companions: Callable[[str], Sequence[str]]
    ) -> None:
        """Delete the keys that belong to metrics whose series is gone (one single-key
        DEL each: the keys of one metric need not share a Redis Cluster slot)."""
        pipe = self.redis.pipeline(transaction=False)
        for metric in gone:
            for key in companions(metric):
                pipe.delete(key)
        pipe.hdel(self.keys.labels(), *gone)  # their label sets (skyline.store.labels)
        pipe.execute()

    def _due_for_trim(
        self, metrics: Sequence[str], oldest_ok: float, newest_ok: float, max_bytes: int
    ) -> list[str]:
        """The metrics whose series must be read whole: not sealed yet (written by
        APPEND only, or in the format before sealed blocks), empty, too old at
        either end, or too large."""
        due = []
        for chunk, spans in self.spans(metrics):
            for metric, (first, last, size, sealed) in zip(chunk, spans, strict=True):
                if (
                    not sealed
                    or first is None
                    or last is None
                    or first < oldest_ok
                    or last < newest_ok
                    or size > max_bytes
                ):
                    due.append(metric)
        return due

    def _plan_trim(
        self,
        pipe: redis.client.Pipeline,
        metric: str,
        raw: bytes,
        now: float,
        keep_seconds: int,
        grace: int,
        inactive_after: int,
    ) -> str:
        key = self.keys.series(metric)
        if not raw:
            pipe.srem(self.keys.metrics(), metric)
            return "missing"
        damaged = False
        try:
            rec, rewrites = decode(raw)
        except CorruptSeries as exc:
            rec, rewrites, damaged = _salvage(metric, raw, exc)
        series = prepare(rec)
        if not len(series) or series.timestamps[-1] < now - inactive_after:
            pipe.srem(self.keys.metrics(), metric)
            run_script(self._delete_if_unchanged, pipe, [key], [len(raw)], self.cluster)
            return "delete"
        cutoff = now - keep_seconds
        messy = len(rec) - len(series) > max(10, len(series) // 10)
        sealed = is_sealed(raw) and read_header(raw).block > 0  # an empty block: due each pass
        if series.timestamps[0] >= cutoff - grace and not messy and sealed and not damaged:
            return "kept"
        keep = series.timestamps >= cutoff
        body = seal(series.timestamps[keep], series.values[keep], rewrites + 1)
        run_script(self._rewrite, pipe, [key], [len(raw), body], self.cluster)
        return "corrupt" if damaged else "rewrite"

    def _settle(self, actions: list[tuple[str, str]], results: Iterator[object],
                gone: list[str]) -> Counter[str]:  # fmt: skip
        """Count what the pipeline did; ``gone`` gets the metrics whose series is gone."""
        outcome: Counter[str] = Counter()
        readd: list[str] = []
        for metric, action in actions:
            if action == "kept":
                outcome["kept"] += 1
            elif action == "missing":
                next(results)
                outcome["missing"] += 1
                gone.append(metric)
            elif action == "delete":
                next(results)  # SREM
                if next(results) == 1:
                    outcome["deleted"] += 1
                    gone.append(metric)
                else:  # new data arrived meanwhile: keep the metric listed
                    readd.append(metric)
                    outcome["raced"] += 1
            else:
                done = next(results) == 1
                outcome["rewritten" if done else "raced"] += 1
                outcome["corrupt"] += action == "corrupt"
        if readd:
            self.redis.sadd(self.keys.metrics(), *readd)
        return outcome

    def delete(self, metric: str) -> None:
        """Delete the series, and the store's companion keys of the metric (one
        single-key DEL each)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(self.keys.metrics(), metric)
        pipe.delete(self.keys.series(metric))
        for key in self.companions(metric) if self.companions else ():
            pipe.delete(key)
        pipe.hdel(self.keys.labels(), metric)
        pipe.execute()

    def read_tails(self, metrics: Sequence[str], records: int) -> dict[str, Series]:
        """The recent end of many series: each metric's last ``records`` records (a
        whole series when shorter; a sealed block's points count as records, in
        time order before the raw ones), prepared like every other read (sorted,
        de-duplicated last write wins, non-finite dropped).

        One single-key ``GETRANGE key -(records*12) -1`` per metric, with the head
        and STRLEN, pipelined ``READ_CHUNK`` at a time, decoded a chunk at a time
        (``to_series_many``); a series whose raw records are fewer than asked for
        and that has a sealed block is read whole (a GET) instead.  Every writer
        appends whole records, so the tail starts on a record.  Every point returned
        is the whole series' (a timestamp's last write is always in the tail), and
        every point of the whole series newer than all the records before the tail
        is returned: for a series appended in time order, its last points.  A point
        appended out of order before the tail's records is not seen, so a caller
        that needs the points from some time on checks that the tail reaches back
        past it."""
        if records < 1:
            raise ValueError(f"records must be at least 1, not {records}")
        nbytes = records * RECORD_SIZE
        out: dict[str, Series] = {}
        for i in range(0, len(metrics), READ_CHUNK):
            chunk = metrics[i : i + READ_CHUNK]
            pipe = self.redis.pipeline(transaction=False)
            for metric in chunk:
                key = self.keys.series(metric)
                pipe.getrange(key, -nbytes, -1)
                pipe.getrange(key, 0, HEAD_SIZE - 1)
                pipe.strlen(key)
            r = redis_raw.pipeline_reads(
                pipe
            )  # a key of another type: None, read as an empty series
            tails: list[bytes | None] = r[0::3]
            whole = [n for n, (head, size) in enumerate(zip(r[1::3], r[2::3], strict=True))
                     if head and is_sealed(head) and size - read_header(head).end < nbytes]  # fmt: skip
            if whole:
                pipe = self.redis.pipeline(transaction=False)
                for n in whole:
                    pipe.get(self.keys.series(chunk[n]))
                for n, raw in zip(whole, redis_raw.pipeline_reads(pipe), strict=True):
                    tails[n] = _whole(chunk[n], raw)[0][-records:].tobytes()
            out.update(zip(chunk, to_series_many(tails), strict=True))
        return out


def _whole(metric: str, raw: bytes | None) -> tuple[np.ndarray, Cursor]:
    """A series read whole: its records (what can be read of a damaged one) and the
    cursor at its end."""
    raw = raw or b""
    try:
        rec = decode(raw)[0]
    except CorruptSeries as exc:
        rec = _salvage(metric, raw, exc)[0]
    return rec, Cursor(len(raw), raw[:HEAD_SIZE])


def _salvage(metric: str, raw: bytes, exc: CorruptSeries) -> tuple[np.ndarray, int, bool]:
    """What can be read of a series whose sealed block is damaged: the raw records
    after it (none if the header itself is wrong), with the rewrite count; logged."""
    head = read_header(raw)
    rec = records(raw, head.end) if head.end <= len(raw) else records(b"")
    log.error("series %r: %s; the sealed block is dropped, %d raw records after it kept",
              metric, exc, len(rec))  # fmt: skip
    return rec, head.rewrites, True


def _log_corrupt(bad: list[tuple[str, str]]) -> None:
    for metric, why in bad:
        log.error("series %r cannot be read (%s): returned empty until roomba rewrites it",
                  metric, why)  # fmt: skip
