"""Labelled metrics: a metric is a name plus a label set; its series key is one dotted name.

The store keeps one series per metric under one name (``ts:{metric}``), so a
labelled series is stored under its *flattened* name, the one flux has always
given remote_write series (and vista Prometheus pulls and SQL label columns)::

    [<prefix>.]<__name__>[.<label>=<value>]...     labels sorted by name

with empty labels left out and every character of a value outside
``A-Za-z0-9+-%_:`` made ``_`` (``instance="127.0.0.1:9100"`` gives
``instance=127_0_0_1:9100``).  (vista's Prometheus and VictoriaMetrics pulls keep
their historical names, whose values keep dots: ``instance=127.0.0.1:9100``.)
Those names are unchanged: existing series, rules and profiles keep working.  Plain dotted names (Graphite, StatsD, the flux
JSON API) are untouched: they have no label set, and a selector sees them as
``{__name__="<the dotted name>"}``.

The flattening loses what the cleaning changed, so the label set itself (the
values as sent, ``__name__`` without the prefix) is kept beside the series:

- in Redis, the ``labels`` hash (metric -> JSON object), written by the ingest
  path the first time it sees a metric (an HMGET, then one HSET of those missing; a
  per-process cache of name hashes makes the repeat free), with the metric added to
  the ``labels_new`` set, and deleted with the metric's series (roomba,
  ``TimeSeriesStore.delete``);
- in SQL, the ``metric_labels`` table (one row per metric and label), which
  panorama fills from ``labels_new`` (``skyline.events.panorama.labels``).

Two label sets that flatten to one name share the series; the first one seen is
the one kept (but for two writers racing on the metric's first point).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import redis

from skyline.settings.selector import Selector
from skyline.store.keys import RedisKeys

NAME_LABEL = "__name__"
_VALUE_UNSAFE = re.compile(r"[^A-Za-z0-9+\-%_:]")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LABELS = 64  # label pairs kept per metric in the index (a flattened name caps them anyway)
MAX_VALUE_LENGTH = 1024
SEEN_LIMIT = 100_000  # metrics a process remembers having registered (as 64-bit hashes)


def clean_value(value: str) -> str:
    """A label value made name-safe (the flattening's one lossy step)."""
    return _VALUE_UNSAFE.sub("_", value)


def flatten(name: str, labels: Mapping[str, str], prefix: str = "") -> str:
    """The series name of ``name`` with ``labels`` (``__name__`` among them is ignored)."""
    parts = sorted((k, clean_value(v)) for k, v in labels.items() if k != NAME_LABEL and v)
    metric = prefix + name
    if parts:
        body = ".".join(f"{k}={v}" for k, v in parts)
        metric = f"{metric}.{body}" if name else prefix + body
    return metric


def parsed_labels(metric: str) -> dict[str, str]:
    """The label set a series name itself shows: the trailing ``label=value`` elements
    (cleaned values) and the rest as ``__name__``; a plain dotted name gives only
    ``__name__``.  Used when the index has no entry for the metric."""
    parts = metric.split(".")
    labels: dict[str, str] = {}
    while parts:
        k, eq, v = parts[-1].partition("=")
        if not eq or not _LABEL_NAME.fullmatch(k) or k in labels or "=" in v:
            break
        labels[k] = v
        parts.pop()
    if parts:
        labels[NAME_LABEL] = ".".join(parts)
    return labels


def label_set(name: str, labels: Mapping[str, str]) -> dict[str, str]:
    """What the index keeps: non-empty labels (bounded), ``__name__`` first."""
    out = {NAME_LABEL: name} if name else {}
    for k in sorted(labels):
        v = labels[k]
        if k != NAME_LABEL and v and len(out) < MAX_LABELS:
            out[k] = v[:MAX_VALUE_LENGTH]
    return out


class LabelIndex:
    """The ``labels`` hash: each labelled metric's label set, as it was sent."""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.redis, self.keys = client, keys
        self.seen: set[int] = set()  # hash() of the metrics registered: bounded memory

    def register(self, entries: Mapping[str, Mapping[str, str]]) -> int:
        """Record ``metric -> label set`` for metrics not recorded yet; returns how many
        were new.  Three commands per call at most (HMGET, then HSET and SADD of the
        missing ones), none for metrics this process registered before.  Two writers
        racing on one new metric both write it (the same name: the same labels but for
        what the name's cleaning hides)."""
        fresh = {m: ls for m, ls in entries.items() if hash(m) not in self.seen}
        if not fresh:
            return 0
        names = list(fresh)
        have = cast(list[bytes | None], self.redis.hmget(self.keys.labels(), names))
        missing = {
            m: json.dumps(dict(fresh[m]), separators=(",", ":"))
            for m, h in zip(names, have, strict=True)
            if h is None
        }
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(self.keys.labels(), mapping=missing)  # type: ignore[arg-type]
            pipe.sadd(self.keys.labels_new(), *missing)
            pipe.execute()
        if len(self.seen) + len(names) > SEEN_LIMIT:
            self.seen.clear()
        self.seen.update(map(hash, names))
        return len(missing)

    def get_many(self, metrics: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each metric's label set: the index's, else what its name shows."""
        if not metrics:
            return {}
        raw = cast(list[bytes | None], self.redis.hmget(self.keys.labels(), list(metrics)))
        return {m: _decode(r) or parsed_labels(m) for m, r in zip(metrics, raw, strict=True)}

    def get(self, metric: str) -> dict[str, str]:
        return self.get_many([metric])[metric]

    def select(self, selector: Selector, metrics: Iterable[str]) -> list[str]:
        """The metrics (in the order given) whose label set the selector matches."""
        names = list(metrics)
        out: list[str] = []
        for start in range(0, len(names), 5000):
            chunk = names[start : start + 5000]
            sets = self.get_many(chunk)
            out.extend(m for m in chunk if selector.matches(sets[m]))
        return out

    def take_new(self, count: int) -> list[str]:
        """Up to ``count`` metrics whose label set is not in SQL yet (popped)."""
        raw = cast(list[bytes] | None, self.redis.spop(self.keys.labels_new(), count))
        return [r.decode() if isinstance(r, bytes) else str(r) for r in raw or []]

    def give_back(self, metrics: Sequence[str]) -> None:
        if metrics:
            self.redis.sadd(self.keys.labels_new(), *metrics)

    def forget(self, metrics: Sequence[str]) -> None:
        if metrics:
            self.redis.hdel(self.keys.labels(), *metrics)
            self.seen.difference_update(map(hash, metrics))


def _decode(raw: bytes | str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    return {str(k): str(v) for k, v in doc.items()}
