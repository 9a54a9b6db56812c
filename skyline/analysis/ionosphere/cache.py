"""Caching a metric's profile data between checks: memcached or in-process.

Two kinds of entries (``profile_data``):

- ``idx:<metric hash>:<profiles_version>``: the metric's enabled profiles.  Keyed
  by the version counter every profile change INCRs, so a created, disabled or
  deleted profile takes effect on the very next check (no TTL games, unlike the
  reference's hour-long memcached staleness).  A match does not change the version,
  so the index's ``last_matched`` times are those of when it was cached; ``get``
  orders the profiles at check time with the times of the matches this process
  recorded since (``note_match``), so the most recently matched profile is tried
  first.  Matches recorded by another ionosphere process are seen when the metric's
  profiles next change.
- ``fp:<profile id>``: a profile's features and series, immutable once created.

With ``[ionosphere] memcached = "host:port"`` entries live in memcached (shared by
processes, survive restarts); otherwise in an in-process LRU.  memcached down or
answering garbage is not an error for a check: the data is read from SQL, and the
failure is logged and counted (``cache.errors``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import redis
from sqlalchemy import Engine

from skyline.analysis.ionosphere.profile_data import (
    CorruptProfile,
    ProfileData,
    ProfileMeta,
    load_data,
    load_metas,
    metas_from_json,
    metas_to_json,
    order_metas,
)
from skyline.store.keys import RedisKeys

log = logging.getLogger("skyline.analysis.ionosphere.cache")
DATA_TTL = 7 * 86400  # profile data never changes; the TTL only frees memory of old ones


class Backend(Protocol):
    def get_many(self, keys: list[str]) -> dict[str, Any]: ...

    def set_many(self, items: dict[str, Any]) -> None: ...


class LocalBackend:
    """An in-process LRU of decoded objects."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        out = {}
        for k in keys:
            if k in self._items:
                self._items.move_to_end(k)
                out[k] = self._items[k]
        return out

    def set_many(self, items: dict[str, Any]) -> None:
        self._items.update(items)
        for k in items:
            self._items.move_to_end(k)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class MemcachedBackend:
    """pymemcache with short timeouts; values are JSON strings.  Raises on failure."""

    def __init__(self, address: str, timeout: float) -> None:
        from pymemcache.client.base import Client

        host, _, port = address.rpartition(":")
        self.client = Client((host or "127.0.0.1", int(port)), connect_timeout=timeout,
                             timeout=timeout, no_delay=True)  # fmt: skip

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        return {k: v.decode() for k, v in self.client.get_many(keys).items()}

    def set_many(self, items: dict[str, Any]) -> None:
        self.client.set_many(items, expire=DATA_TTL, noreply=False)

    def close(self) -> None:
        self.client.close()


class ProfileCache:
    """``get(metric)`` -> the metric's enabled profiles and their data, cached."""

    def __init__(self, engine: Engine, redis_client: redis.Redis, keys: RedisKeys, cfg: Any,
                 count: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.engine, self.redis, self.keys = engine, redis_client, keys
        self.count = count or (lambda name: None)
        self.remote = bool(cfg.memcached)
        self.backend: Backend = (MemcachedBackend(cfg.memcached, cfg.memcached_timeout)
                                 if self.remote else LocalBackend(cfg.cache_max_entries))  # fmt: skip
        self.max_entries = int(cfg.cache_max_entries)
        self._matched: OrderedDict[int, int] = OrderedDict()  # profile id -> last match

    def note_match(self, profile_id: int, when: int) -> None:
        """A match this process just recorded: the next ``get`` tries the profile first."""
        self._matched[profile_id] = when
        self._matched.move_to_end(profile_id)
        while len(self._matched) > self.max_entries:
            self._matched.popitem(last=False)

    def version(self, metric: str) -> int:
        return int(self.redis.get(self.keys.profiles_version(metric)) or 0)

    def get(self, metric: str) -> tuple[list[ProfileMeta], dict[int, ProfileData | CorruptProfile]]:
        """Enabled profiles of ``metric`` (most recently matched first, as of now for
        matches of this process) and their data."""
        digest = hashlib.sha1(metric.encode()).hexdigest()
        idx_key = f"{self.keys.prefix}iono:idx:{digest}:{self.version(metric)}"
        cached = self._get({idx_key: metas_from_json}).get(idx_key)
        if cached is None:
            metas = load_metas(self.engine, metric)
            self._set({idx_key: metas}, metas_to_json)
        else:
            metas = cached
        metas = order_metas(metas, self._matched)
        keys = {f"{self.keys.prefix}iono:fp:{m.id}": m.id for m in metas}
        found = self._get(dict.fromkeys(keys, ProfileData.from_json))
        data: dict[int, ProfileData | CorruptProfile] = {keys[k]: v for k, v in found.items()}
        missing = [pid for k, pid in keys.items() if k not in found]
        if missing:
            loaded = load_data(self.engine, missing)
            data.update(loaded)
            good = {f"{self.keys.prefix}iono:fp:{pid}": d for pid, d in loaded.items()
                    if isinstance(d, ProfileData)}  # fmt: skip
            self._set(good, ProfileData.to_json)
        self.count("cache.hits" if not missing and cached is not None else "cache.misses")
        return metas, data

    def _get(self, decoders: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
        try:
            raw = self.backend.get_many(list(decoders))
        except Exception as exc:  # noqa: BLE001 - any cache failure: fall back to SQL
            self._failed("get", exc)
            return {}
        if not self.remote:
            return raw
        out = {}
        for k, v in raw.items():
            try:
                out[k] = decoders[k](v)
            except (ValueError, KeyError, TypeError) as exc:
                self._failed("decode", exc)
        return out

    def _set(self, items: dict[str, Any], encode: Callable[[Any], str]) -> None:
        if not items:
            return
        try:
            if self.remote:
                self.backend.set_many({k: encode(v) for k, v in items.items()})
            else:
                self.backend.set_many(items)
        except Exception as exc:  # noqa: BLE001 - any cache failure: fall back to SQL
            self._failed("set", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.count("cache.errors")
        log.warning(
            "profile cache %s failed, using SQL: %s", what, " ".join(str(exc).split())[:200]
        )
