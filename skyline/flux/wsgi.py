"""gunicorn's entry point: ``skyline.flux.wsgi:app`` (one app per worker process)."""

from __future__ import annotations

import os

from flask import Flask

from skyline.daemon import Counters, setup_logging
from skyline.db import make_engine
from skyline.flux.app import create_app
from skyline.flux.server import CounterPusher, make_context
from skyline.redis_conn import connect
from skyline.redis_keys import RedisKeys
from skyline.settings import load_settings


def build() -> Flask:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    settings = load_settings()
    setup_logging(settings, "flux")
    counters = Counters()
    client = connect(settings, start_embedded=False)
    engine = make_engine(
        settings.database_url, settings.database.connect_timeout, settings.database.io_timeout
    )
    ctx, _ = make_context(settings, client, counters, engine)
    CounterPusher(client, RedisKeys(settings.redis.prefix), counters).start()
    return create_app(ctx)


app = build()
