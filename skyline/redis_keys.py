"""Every Redis key Skyline uses, built in one place under one configurable prefix.

Each key is declared once in ``KEYS`` with its Redis type, its TTL and what it
holds; ``RedisKeys`` builds the names.  No key spans two metrics, so the store
can be sharded on Redis Cluster.  ``docs/redis-keys.md`` is generated from
``KEYS`` (``python -m skyline.redis_keys``) and a test keeps it in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeySpec:
    template: str  # after the prefix; {metric}, {daemon} are placeholders
    type: str
    ttl: str
    holds: str


KEYS: dict[str, KeySpec] = {
    "series": KeySpec(
        "ts:{metric}",
        "STRING",
        "none; roomba deletes a metric inactive for skyline.metrics_inactive_after",
        "The recent window of one metric: fixed-width 12-byte records <uint32 timestamp, "
        "float64 value> (little-endian), appended in arrival order; roomba rewrites it "
        "sorted, de-duplicated and trimmed, led by a header record (timestamp 0, value = "
        "rewrite count). See docs/storage.md.",
    ),
    "metrics": KeySpec(
        "metrics",
        "SET",
        "none; members removed with their series",
        "Names of every metric that has a series key.",
    ),
    "changed": KeySpec(
        "changed",
        "SET",
        "86400 s, refreshed by every write",
        "Names of metrics that received data since the analyzer last took them (the "
        "analyzer pops members); lets analysis run on arrival without scanning.",
    ),
    "heartbeat": KeySpec(
        "heartbeat:{daemon}",
        "STRING",
        "skyline.heartbeat_ttl (120 s)",
        "JSON {pid, host, started, ts, runs} refreshed by each run of a daemon; its age is "
        "the daemon's liveness.",
    ),
    "counters": KeySpec(
        "counters:{daemon}",
        "HASH",
        "3 x skyline.counters_interval",
        "The latest value of each of a daemon's counters (they are also stored as the "
        "metrics skyline.<daemon>.<host>.<counter>).",
    ),
}


class RedisKeys:
    """Builds key names; the only code that knows how Skyline's keys are spelled."""

    def __init__(self, prefix: str = "sky:") -> None:
        self.prefix = prefix
        self._series = f"{prefix}ts:"

    def series(self, metric: str) -> str:
        return self._series + metric

    def metric_of_series(self, key: str | bytes) -> str:
        if isinstance(key, bytes):
            key = key.decode()
        return key[len(self._series) :]

    def metrics(self) -> str:
        return f"{self.prefix}metrics"

    def changed(self) -> str:
        return f"{self.prefix}changed"

    def heartbeat(self, daemon: str) -> str:
        return f"{self.prefix}heartbeat:{daemon}"

    def counters(self, daemon: str) -> str:
        return f"{self.prefix}counters:{daemon}"


def render_markdown(prefix: str = "sky:") -> str:
    lines = [
        "# Redis keys",
        "",
        "Generated from `skyline/redis_keys.py` (`python -m skyline.redis_keys > docs/redis-keys.md`).",
        f"Every key starts with `[redis] prefix` (default `{prefix}`).",
        "",
        "| key | type | TTL | holds |",
        "|---|---|---|---|",
    ]
    for spec in KEYS.values():
        lines.append(f"| `{prefix}{spec.template}` | {spec.type} | {spec.ttl} | {spec.holds} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
