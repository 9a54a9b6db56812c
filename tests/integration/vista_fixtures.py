"""Helpers shared by the vista tests: settings with [[vista]] tables, and a pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from skyline.ingest.vista.pull import PullResult, pull
from skyline.ingest.vista.sources import Source, build
from skyline.settings import Settings
from skyline.settings.doc import toml_value
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore


def vista_conf(path: Path, *sources: dict[str, Any], extra: str = "") -> Path:
    """A settings file holding ``sources`` as [[vista]] tables."""
    lines = [extra]
    for src in sources:
        lines.append("[[vista]]")
        for k, v in src.items():
            lines.append(f"{k} = {toml_value(v)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class Harness:
    """The store and one pass of a source, as the daemon runs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis.url)
        self.keys = RedisKeys(settings.redis.prefix)
        self.store = TimeSeriesStore(self.redis, self.keys)
        self.sources: dict[str, Source] = {}

    def source(self, name: str) -> Source:
        if name not in self.sources:
            cfg = next(c for c in self.settings.vista if c.name == name)
            self.sources[name] = build(cfg)
        return self.sources[name]

    def pull(self, name: str, now: float, since: float | None = None) -> PullResult:
        return pull(self.source(name), self.store, self.redis, self.settings, now, since=since)

    def series(self, metric: str) -> list[tuple[int, float]]:
        s = self.store.read(metric)
        return list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))

    def raw_count(self, metric: str) -> int:
        """Records appended (duplicates included): the store's raw length."""
        return len(self.store.read_raw(metric)) // 12

    def status(self) -> dict[str, Any]:
        return {
            k.decode(): json.loads(v)
            for k, v in self.redis.hgetall(self.keys.vista_status()).items()
        }

    def close(self) -> None:
        for s in self.sources.values():
            s.close()
        self.redis.close()
