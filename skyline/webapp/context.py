"""What every request of the web app needs: settings, SQL, Redis and the series store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import Engine

from skyline.db import engine_for
from skyline.settings import Settings
from skyline.store.connection import connect
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore


@dataclass
class Context:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    keys: RedisKeys
    store: TimeSeriesStore
    clock: Callable[[], float] = time.time


def make_context(
    settings: Settings, client: redis.Redis | None = None, engine: Engine | None = None
) -> Context:
    keys = RedisKeys(settings.redis.prefix)
    client = client if client is not None else connect(settings, start_embedded=False)
    engine = engine or engine_for(settings)
    return Context(settings, engine, client, keys, TimeSeriesStore(client, keys))
