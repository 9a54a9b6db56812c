"""gunicorn's entry point: ``skyline.ingest.flux.wsgi:app`` (one app per worker process)."""

from __future__ import annotations

import os

from flask import Flask

from skyline.db import make_engine
from skyline.ingest.flux.app import create_app
from skyline.ingest.flux.deadline import Watchdog
from skyline.ingest.flux.server import CounterPusher, make_context
from skyline.runtime.daemon import Counters, setup_logging
from skyline.settings import load_settings
from skyline.store.connection import connect
from skyline.store.keys import RedisKeys


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
    watchdog = Watchdog(settings.flux.request_time_limit, counters)
    watchdog.start()
    return create_app(ctx, watchdog)


app = build()
