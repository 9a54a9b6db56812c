"""Consecutive-breach counts per (rule, metric), kept in Redis so a restart keeps them.

Key ``boundary:breaches:<rule index>:<metric>`` holds ``"<count> <timestamp>"``: the
consecutive breaches so far and the timestamp of the last datapoint judged under that
rule.  The timestamp lets a restarted daemon judge exactly the datapoints that arrived
after the last one judged (none twice, none of the old history).  TTL: the rule's
expiry, at least an hour; a metric silent for longer starts again from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from skyline.events.boundary_rules import Applied
from skyline.store.keys import RedisKeys

MIN_TTL = 3600


@dataclass
class Count:
    breaches: int = 0
    last_ts: int | None = None


def parse(raw: bytes | None) -> Count:
    """A stored count; anything unreadable counts as none (the key is rewritten soon)."""
    if not raw:
        return Count()
    try:
        breaches, ts = raw.split()
        return Count(max(0, int(breaches)), int(ts))
    except ValueError:
        return Count()


def load(
    client: redis.Redis, keys: RedisKeys, metric: str, rules: list[Applied]
) -> dict[int, Count]:
    """The stored counts of ``metric`` under each of its rules (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for applied in rules:
        pipe.get(keys.boundary_breaches(applied.index, metric))
    return {a.index: parse(raw) for a, raw in zip(rules, pipe.execute(), strict=True)}


def save(pipe: redis.client.Pipeline, keys: RedisKeys, metric: str, applied: Applied,
         count: Count) -> None:  # fmt: skip
    ttl = max(applied.rule.expiry, MIN_TTL)
    pipe.set(keys.boundary_breaches(applied.index, metric), f"{count.breaches} {count.last_ts}",
             ex=ttl)  # fmt: skip
