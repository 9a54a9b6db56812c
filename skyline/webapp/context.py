"""What every request of the web app needs: settings, SQL, Redis and the series store."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import Engine

from skyline.db import make_engine
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


def make_context(
    settings: Settings, client: redis.Redis | None = None, engine: Engine | None = None
) -> Context:
    keys = RedisKeys(settings.redis.prefix)
    client = client if client is not None else connect(settings, start_embedded=False)
    engine = engine or make_engine(
        settings.database_url, settings.database.connect_timeout, settings.database.io_timeout
    )
    return Context(settings, engine, client, keys, TimeSeriesStore(client, keys))
