"""The analyzer's default mode: every new point of every metric judged by the
streaming detector, its state kept in Redis between passes and across restarts.

One pass over a set of metrics:

1. load each metric's state (one GET per key, pipelined; no command spans two
   metrics, so this works on Redis Cluster);
2. read the points that arrived since the last pass (byte cursors kept in memory;
   after a restart, a rewritten series or a missing state, the whole series), sorted,
   de-duplicated, and only those after the last point the state has judged;
3. step them through the detector in timestamp order (``score_points``: a metric
   that received a batch has every point judged, in order);
4. save the states that moved (SET with a TTL) and return the points whose score
   reached ``[analyzer] threshold``.

State rebuilds: a metric without a state is new to the detector, and every stored
point is judged (the detector's warm-up keeps the first ones neutral), exactly as
``skyline nab run`` judges a file.  A state of another version or parameter set is
rebuilt from the stored series: points up to the last one it had judged are learned
silently, later ones are judged.  No Redis, events or settings reading beyond
the arguments given here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from skyline.algorithms.state import last_learned
from skyline.algorithms.stepping import VectorDetector, default_vector_detector, score_points
from skyline.redis_keys import RedisKeys
from skyline.timeseries import Cursor, TimeSeriesStore, sort_dedupe

STATE_CHUNK = 1000  # state keys per pipeline


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


make_detector = default_vector_detector


class DetectorPass:
    """Judges the new points of metrics; keeps read cursors between passes."""

    def __init__(self, redis_client: redis.Redis, keys: RedisKeys, store: TimeSeriesStore,
                 detector: VectorDetector, threshold: float, state_ttl: int) -> None:  # fmt: skip
        self.redis = redis_client
        self.keys = keys
        self.store = store
        self.detector = detector
        self.threshold = threshold
        self.state_ttl = int(state_ttl)
        self.cursors: dict[str, Cursor] = {}
        self.counts = PassCounts()

    def run(self, metrics: Sequence[str]) -> list[Detection]:
        """Judge the new points of ``metrics``; detections in (metric, time) order."""
        found: list[Detection] = []
        for i in range(0, len(metrics), STATE_CHUNK):
            found += self._run_chunk(list(metrics[i : i + STATE_CHUNK]))
        return found

    def _run_chunk(self, metrics: list[str]) -> list[Detection]:
        blobs = self._load(metrics)
        lay = self.detector.layout
        state, restored = lay.unpack_rows(blobs, self.detector.new_state(len(metrics)))
        last_ts = lay.view(state, "last_ts").copy()
        silent_until = np.full(len(metrics), -np.inf)
        for i, ok in enumerate(restored.tolist()):
            if ok:
                continue
            self.cursors.pop(metrics[i], None)
            old = last_learned(blobs[i])
            if old is None:
                self.counts.new_states += 1
            else:
                self.counts.rebuilt_states += 1
                silent_until[i] = old
        ts, vs = self._new_points(metrics, last_ts)
        scores = score_points(self.detector, state, ts, vs)
        moved = [i for i, t in enumerate(ts) if len(t)]
        self._save([metrics[i] for i in moved], state[moved])
        found = []
        for i in moved:
            judged = ts[i] > silent_until[i]
            self.counts.judged += int(judged.sum())
            hit = judged & (scores[i] >= self.threshold)
            for j in np.flatnonzero(hit).tolist():
                found.append(Detection(metrics[i], int(ts[i][j]), float(vs[i][j]),
                                       float(scores[i][j])))  # fmt: skip
        return found

    def _load(self, metrics: list[str]) -> list[bytes | None]:
        pipe = self.redis.pipeline(transaction=False)
        for metric in metrics:
            pipe.get(self.keys.detector_state(metric))
        return pipe.execute()

    def _save(self, metrics: list[str], rows: np.ndarray) -> None:
        if not metrics:
            return
        pipe = self.redis.pipeline(transaction=False)
        for metric, blob in zip(metrics, self.detector.layout.pack_rows(rows), strict=True):
            pipe.set(self.keys.detector_state(metric), blob, ex=self.state_ttl)
        pipe.execute()

    def _new_points(
        self, metrics: list[str], last_ts: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per metric, the sorted, de-duplicated points after ``last_ts``."""
        cursors = {m: self.cursors.get(m) for m in metrics}
        ts: list[np.ndarray] = []
        vs: list[np.ndarray] = []
        for i, (metric, rec, cursor, whole) in enumerate(self.store.read_since_many(cursors)):
            self.cursors[metric] = cursor
            s = sort_dedupe(rec["t"].astype(np.int64), rec["v"].astype(np.float64))
            keep = s.timestamps > last_ts[i]
            self.counts.late += int((~keep).sum()) if not whole else 0
            ts.append(s.timestamps[keep])
            vs.append(s.values[keep])
        return ts, vs

    def retain(self, metrics: set[str]) -> None:
        """Keep read cursors only for ``metrics`` (the store's metrics at a sweep)."""
        for metric in [m for m in self.cursors if m not in metrics]:
            del self.cursors[metric]
