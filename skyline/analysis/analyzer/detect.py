"""The analyzer's default mode: every new point of every metric judged by the
streaming detector, its state kept in Redis between passes and across restarts.

One pass over a set of metrics, a chunk of ``STATE_CHUNK`` at a time:

1. send the chunk's reads in one raw payload, single-key commands (so this works
   on Redis Cluster): each metric's state (a GET; a state this process saved last is
   kept in memory, ``StateCache``, and only its 24-byte header is read back, to check
   that nobody else changed or deleted it) and the points that arrived since the
   last pass (byte cursors kept in memory; after a restart, a rewritten series or a
   missing state, the whole series).  The next chunk's reads are sent before this
   chunk is judged, so Redis answers them while the analyzer steps;
2. keep the new points sorted, de-duplicated, and only those after the last point
   the state has judged;
3. step them through the detector in timestamp order (``score_points``: a metric
   that received a batch has every point judged, in order);
4. save the states that moved (SET with a TTL) and return the points whose score
   reached ``[analyzer] threshold``.

Checkpoints (``[analyzer] state_checkpoint``): a state this process saved and still
holds in its cache is not written back on every pass, only once it is due (the
checkpoint interval after its last save, scaled by a per-metric factor in [0.5, 1)
so the saves of many metrics spread over passes), when the cache evicts it, and at
stop (``flush``).  Writing every state on every pass is most of a pass's cost
(docs/performance.md).  A crash loses at most a checkpoint interval of learning: the
next owner restores the state last saved and re-judges the points after it from the
stored series.  The detector is deterministic, so it reaches the same scores and
re-emits the same detections, with the same event ids, which panorama stores once.
An error in a chunk forgets the cursors and cached states of its metrics, so the
next pass restores them from Redis rather than skipping points; the chunks judged
before it are done (cursors moved, states maybe saved), so their detections are
raised with the error (``PassFailed``) for the caller to emit.  An evicted state
whose save fails is forgotten the same way, without failing the pass.

State rebuilds: a metric without a state is new to the detector, and every stored
point is judged (the detector's warm-up keeps the first ones neutral), exactly as
``skyline nab run`` judges a file.  A state of another version or parameter set is
rebuilt from the stored series: points up to the last one it had judged are learned
silently, later ones are judged.  Settings come as arguments; events are the
caller's (``skyline.analysis.analyzer.agent``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import redis

from skyline.analysis.algorithms.state import last_learned
from skyline.analysis.algorithms.stepping import (
    VectorDetector,
    default_vector_detector,
    score_flat,
)
from skyline.analysis.analyzer.state_cache import StateCache
from skyline.store import raw as redis_raw
from skyline.store.cluster import (
    Ready,
    execute_routed_checked,
    execute_routed_reads,
    is_cluster,
    send_routed,
)
from skyline.store.incremental import SinceAsk, SinceChunk
from skyline.store.keys import RedisKeys
from skyline.store.memo import Memo
from skyline.store.timeseries import Cursor, TimeSeriesStore

log = logging.getLogger(__name__)

STATE_CHUNK = 1000  # metrics per chunk: one payload of reads (3 commands a metric)


@dataclass(frozen=True)
class Detection:
    metric: str
    timestamp: int
    value: float
    score: float


@dataclass
class PassCounts:
    judged: int = 0
    late: int = 0  # points at or before the last judged timestamp: not judged
    new_states: int = 0
    rebuilt_states: int = 0
    saved: int = 0  # states written to Redis (new, due, evicted or flushed)
    evicted_unsaved: int = 0  # evicted states whose save failed: re-judged from the last save


make_detector = default_vector_detector


class PassFailed(Exception):
    """A pass failed part way (the cause is ``__cause__``).  ``found`` holds the
    detections of the chunks judged before the failure: their cursors moved on and
    their states may be saved, so they would not be found again; the caller emits
    them, then handles the cause."""

    def __init__(self, found: list[Detection]) -> None:
        super().__init__(f"detector pass failed after {len(found)} detections")
        self.found = found


class _Asked(NamedTuple):
    """A chunk's reads, sent (``DetectorPass._ask``): the cache slot of each metric
    then, its state key, the series reads, and the replies to come."""

    slots: np.ndarray
    keys: list[bytes]
    since: SinceAsk
    pending: redis_raw.Pending | Ready


class DetectorPass:
    """Judges the new points of metrics; keeps read cursors between passes."""

    def __init__(self, redis_client: redis.Redis, keys: RedisKeys, store: TimeSeriesStore,
                 detector: VectorDetector, threshold: float, state_ttl: int,
                 cache_bytes: int = 0, checkpoint: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.redis = redis_client
        self.keys = keys
        self.store = store
        self.detector = detector
        self.threshold = threshold
        self.state_ttl = int(state_ttl)
        self.cursors: dict[str, Cursor] = {}
        self.state_key = Memo(lambda m: keys.detector_state(m).encode())
        self.counts = PassCounts()
        self.cache = StateCache(cache_bytes, detector.layout.width, checkpoint)
        self.clock = clock

    def run(self, metrics: Sequence[str]) -> list[Detection]:
        """Judge the new points of ``metrics``; detections in (metric, time) order.
        A metric named twice is judged once (arrivals can name one twice: from the
        changed set and routed here by another member).  A chunk that fails is
        forgotten (``forget``); ``PassFailed`` then carries the earlier chunks'
        detections.

        Chunks overlap with Redis: the next chunk's reads are sent before this one
        is judged, so Redis answers them meanwhile."""
        metrics = list(dict.fromkeys(metrics))
        given = {m: i for i, m in enumerate(metrics)}
        metrics = self._by_slot(metrics)
        chunks = [metrics[i : i + STATE_CHUNK] for i in range(0, len(metrics), STATE_CHUNK)]
        found: list[Detection] = []
        asked = self._ask(chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            current, asked = asked, None
            assert current is not None
            try:
                replies = current.pending.read()
                if k + 1 < len(chunks):
                    asked = self._ask(chunks[k + 1])
                found += self._judge(chunk, current, replies)
            except BaseException as exc:
                if asked is not None:
                    asked.pending.cancel()
                self.forget(chunk)
                if found and isinstance(exc, Exception):
                    found.sort(key=lambda d: given[d.metric])
                    raise PassFailed(found) from exc
                raise
        found.sort(key=lambda d: given[d.metric])  # stable: each metric's in time order
        return found

    def _by_slot(self, metrics: list[str]) -> list[str]:
        """``metrics`` with the cached ones first, in the order of their cache slots:
        states saved together sit in consecutive slots, so a chunk's rows are mostly
        one run of the cache's slab and are stepped in place (``rows_in_place``)."""
        slots = self.cache.slots(metrics)
        if not (slots >= 0).any():
            return metrics
        order = np.argsort(np.where(slots < 0, np.iinfo(np.intp).max, slots), kind="stable")
        return [metrics[i] for i in order.tolist()]

    def forget(self, metrics: Sequence[str]) -> None:
        """Drop the cursors and cached states of ``metrics`` (unsaved learning too):
        their next pass restores the state last saved in Redis and re-reads the
        series, so points after that state are judged again rather than skipped."""
        for metric in metrics:
            self.cursors.pop(metric, None)
            self.cache.drop(metric)

    def flush(self, metrics: Sequence[str] | None = None) -> int:
        """Save the states learned since their last save (all, or those of
        ``metrics``: call it before another process takes them over); returns how
        many were written."""
        dirty = self.cache.dirty(metrics)
        for i in range(0, len(dirty), STATE_CHUNK):
            part = dirty[i : i + STATE_CHUNK]
            self._save([m for m, _ in part], np.stack([row for _, row in part]))
        return len(dirty)

    def _ask(self, metrics: list[str]) -> _Asked:
        """Send the reads of a chunk, states and new points in one payload (single-key
        commands: no command spans two metrics, so this works on Redis Cluster).  A
        state this process saved last is in its cache (``StateCache``), so only its
        24-byte header is read back, to check that nobody else changed or deleted it;
        the others are read whole.  Changes nothing here: ``_judge`` reads the replies."""
        key, cache = self.state_key, self.cache
        slots = cache.slots(metrics)
        keys = key.many(metrics)
        commands = [cache.check(s) if s >= 0 else redis_raw.get(k)
                    for k, s in zip(keys, slots.tolist(), strict=True)]  # fmt: skip
        since = self.store.ask_since(metrics, [self.cursors.get(m) for m in metrics])
        pending = send_routed(self.redis, keys + since.sent, commands + since.commands)
        return _Asked(slots, keys, since, pending)

    def _judge(self, metrics: list[str], asked: _Asked, replies: list[Any]) -> list[Detection]:
        replies = redis_raw.reads_or_raise(replies)  # a key of another type: missing
        n = len(metrics)
        state, slots, restored, old_last, in_place = self._load(metrics, asked, replies[:n])
        last_ts = self.detector.layout.view(state, "last_ts").copy()
        silent_until = np.full(n, -np.inf)
        reread: list[int] = []  # read past a cursor, but the state is new: read whole
        for i in np.flatnonzero(~restored).tolist():
            if self.cursors.pop(metrics[i], None) is not None:
                reread.append(i)
            if np.isnan(old_last[i]):
                self.counts.new_states += 1
            else:
                self.counts.rebuilt_states += 1
                silent_until[i] = old_last[i]
        reads = [(np.arange(n), self.store.answer_since(asked.since, replies[n:], metrics))]
        if reread:
            names = [metrics[i] for i in reread]
            whole = self.store.read_since_chunk(names, [None] * len(names))
            reads.append((np.array(reread), whole))
        owner, t, v = self._new_points(metrics, last_ts, reads)
        score = score_flat(self.detector, state, owner, t.astype(float), v)
        moved = np.bincount(owner, minlength=n) > 0
        deferred = self.cache.defer(slots, state, moved, self.clock(), in_place)
        due = np.flatnonzero(moved & ~deferred)
        self._save([metrics[i] for i in due.tolist()], state[due])
        judged = t > silent_until[owner]
        self.counts.judged += int(judged.sum())
        hits = np.flatnonzero(judged & (score >= self.threshold)).tolist()
        return [Detection(metrics[owner[j]], int(t[j]), float(v[j]), float(score[j])) for j in hits]

    def _load(
        self, metrics: list[str], asked: _Asked, replies: list[Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
        """The metrics' states from the ``replies`` to ``asked``; the cache slot of
        each state that came from the cache (-1: read from Redis, or new); which were
        restored; for the others the last timestamp a state of another version had
        judged (NaN: no state at all); and whether the states are the cache's own
        rows (every one cached, in one run of slots: stepped in place, not copied).

        A cached state is used when the header in Redis is still the one this process
        saved, and it is still cached: judging the previous chunk may have evicted it
        since it was asked for.  Otherwise it is read again, whole."""
        lay, cache, keys = self.detector.layout, self.cache, asked.keys
        slots = asked.slots.copy()
        blobs: list[bytes | None] = [None] * len(metrics)
        stale: list[int] = []
        held = cache.slots(metrics).tolist()
        for i, (reply, s) in enumerate(zip(replies, slots.tolist(), strict=True)):
            if s < 0:
                blobs[i] = reply if isinstance(reply, bytes) else None
            elif s != held[i] or reply != cache.header(s):  # evicted, changed or gone
                stale.append(i)
        if stale:
            for i in stale:
                cache.drop(metrics[i])
            slots[stale] = -1
            again = [keys[i] for i in stale]
            replies = execute_routed_reads(self.redis, again, [redis_raw.get(k) for k in again])
            for i, reply in zip(stale, replies, strict=True):
                blobs[i] = reply if isinstance(reply, bytes) else None
        hit = slots >= 0
        if hit.all():  # the steady state: the cache's rows, or one gather
            own = cache.rows_in_place(slots)
            if own is not None:
                return own, slots, hit, np.full(len(metrics), np.nan), True
            state = cache.rows(slots)
        else:
            state = np.empty((len(metrics), lay.width))
            state[hit] = cache.rows(slots[hit])
        restored = hit.copy()
        old_last = np.full(len(metrics), np.nan)
        rest = np.flatnonzero(~hit)
        if len(rest):  # read whole: restored if of this detector, else fresh
            rows, ok = lay.unpack_rows([blobs[i] for i in rest], self.detector.new_state(len(rest)))
            state[rest], restored[rest] = rows, ok
            for i in rest.tolist():
                x = last_learned(blobs[i])
                old_last[i] = np.nan if x is None else x
        return state, slots, restored, old_last, False

    def _save(self, metrics: list[str], rows: np.ndarray, cache: bool = True) -> None:
        """SET the states (with the TTL) and cache them as saved; the unsaved states
        the cache drops to make room are written too (and not cached again)."""
        if not metrics:
            return
        lay = self.detector.layout
        keys = self.state_key.many(metrics)
        if is_cluster(self.redis):  # one SET per key, routed to its node
            commands = [redis_raw.set_ex(k, blob, self.state_ttl)
                        for k, blob in zip(keys, lay.pack_rows(rows), strict=True)]  # fmt: skip
            execute_routed_checked(self.redis, keys, commands)
        else:

            def fill(rec: np.ndarray, at: np.ndarray) -> None:  # every row: no copy of rows
                lay.fill_packed(rec, rows if len(at) == len(rows) else rows[at])

            payload = redis_raw.set_ex_records(keys, lay.packed_fields(), fill, self.state_ttl)
            redis_raw.execute_checked(self.redis, payload, len(metrics))
        self.counts.saved += len(metrics)
        if not cache:
            return
        headers = lay.headers(rows)
        evicted = self.cache.put(metrics, keys, headers, rows, self.clock())
        if evicted:
            names = [m for m, _ in evicted]  # metrics of other chunks, out of the cache now
            try:
                self._save(names, np.stack([r for _, r in evicted]), cache=False)
            except (redis.RedisError, OSError) as exc:
                # This chunk's states are saved: failing now would lose its detections.
                # The evicted ones' learning since their last save is lost instead, and
                # forgetting their cursors has their points re-judged from that save.
                self.forget(names)
                self.counts.evicted_unsaved += len(names)
                log.warning("%d evicted detector states not saved (%s): they will be "
                            "re-judged from their last save", len(names), exc)  # fmt: skip

    def _new_points(
        self, metrics: list[str], last_ts: np.ndarray, reads: list[tuple[np.ndarray, SinceChunk]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The points after each metric's ``last_ts``, sorted by metric (its index in
        ``metrics``) then time, one value per timestamp (the last written): arrays
        ``(owner, t, v)``.  ``reads``: (the metrics' indices, what was read for them)
        in the order read; the cursors are taken from them.  One sort for the chunk."""
        whole = np.zeros(len(metrics), dtype=bool)
        for at, got in reads:
            self.cursors.update(zip([metrics[i] for i in at.tolist()], got.cursors, strict=True))
            whole[at] |= got.whole
        owner = np.concatenate([np.repeat(at, got.counts) for at, got in reads])
        allrec = np.concatenate([got.records for _, got in reads])
        t = allrec["t"].astype(np.int64)
        v = allrec["v"].astype(np.float64)
        order = np.lexsort((t, owner))  # stable: the last-written of a timestamp is last
        owner, t, v = owner[order], t[order], v[order]
        last_of_ts = np.ones(len(t), dtype=bool)
        last_of_ts[:-1] = (t[1:] != t[:-1]) | (owner[1:] != owner[:-1])
        fresh = t > last_ts[owner]
        self.counts.late += int((~fresh & last_of_ts & ~whole[owner]).sum())
        keep = last_of_ts & fresh & np.isfinite(v)
        return owner[keep], t[keep], v[keep]

    def retain(self, metrics: set[str]) -> None:
        """Keep read cursors only for ``metrics`` (the store's metrics at a sweep)."""
        for metric in [m for m in self.cursors if m not in metrics]:
            del self.cursors[metric]
            self.cache.drop(metric)
