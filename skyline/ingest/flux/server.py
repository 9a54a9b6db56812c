"""Serving the flux app: sockets bound by the daemon, gunicorn or a threaded server.

The daemon binds the HTTP port itself (so a taken port is a one-line StartupError
naming ``[flux] port``) and hands the listening socket to gunicorn as
``fd://N``; gunicorn's workers import ``skyline.ingest.flux.wsgi``.  Workers add their
counters to a Redis hash every few seconds; the daemon takes them from there and
publishes them with its own.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import redis
from sqlalchemy import Engine

from skyline.ingest.flux.app import Context, create_app
from skyline.ingest.flux.keys import KeyRing
from skyline.ingest.flux.limits import RateLimiter
from skyline.ingest.flux.writer import GraphiteForwarder, Ingest
from skyline.runtime.daemon import OUTAGES, Counters
from skyline.runtime.http_serving import (
    GunicornOptions,
    GunicornServer,
    ThreadedServer,
    bind_listener,
)
from skyline.runtime.threads import ThreadPolicy
from skyline.settings import Settings
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import TimeSeriesStore

log = logging.getLogger("skyline.flux")
WORKER_COUNTERS = "flux-http"  # keys.counters(...) hash the workers add to
PUSH_EVERY = 2.0


def bind(host: str, port: int, kind: int, key: str) -> socket.socket:
    return bind_listener(host, port, kind, "flux", key)


def make_context(
    settings: Settings, client: redis.Redis, counters: Counters, engine: Engine | None
) -> tuple[Context, GraphiteForwarder | None]:
    cfg = settings.flux
    keys = RedisKeys(settings.redis.prefix)
    forwarder = None
    if cfg.forward_graphite:
        forwarder = GraphiteForwarder(
            cfg.forward_graphite, cfg.forward_queue, counters, settings.skyline.retry_backoff_max
        )
        forwarder.start()
    ingest = Ingest(
        TimeSeriesStore(client, keys), counters, max_age=cfg.max_age,
        max_future=cfg.max_future, fill_max_age=settings.skyline.full_duration,
        forwarder=forwarder,
    )  # fmt: skip
    limiter = (
        RateLimiter(client, keys, cfg.rate_limit, cfg.rate_limit_window) if cfg.rate_limit else None
    )
    ctx = Context(cfg, ingest, KeyRing(engine, cfg.key_cache_ttl), limiter, counters, client)
    return ctx, forwarder


class CounterPusher(threading.Thread):
    """In a gunicorn worker: adds the worker's counters to the shared hash."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, counters: Counters) -> None:
        super().__init__(name="flux-counter-pusher", daemon=True)
        self.redis, self.key, self.counters = client, keys.counters(WORKER_COUNTERS), counters
        self.bugs = ThreadPolicy(self.name, log, counters)

    def run(self) -> None:
        while True:
            time.sleep(PUSH_EVERY)
            self.push()

    def push(self) -> None:
        """Add the counts taken since the last push to the shared hash.  Those Redis did
        not add (all of them when it is away; a field it refused, e.g. one that holds no
        number) are kept for the next push; a refusal, not an outage, is logged too."""
        values = self.counters.take()
        if not values:
            return
        pipe = self.redis.pipeline(transaction=False)
        for name, n in values.items():
            pipe.hincrbyfloat(self.key, name, n)
        pipe.expire(self.key, 600)
        try:
            replies = pipe.execute(raise_on_error=False)[: len(values)]
        except OUTAGES:
            replies = [None] * len(values)
        failed = [(name, n) for (name, n), r in zip(values.items(), replies, strict=True)
                  if r is None or isinstance(r, Exception)]  # fmt: skip
        for name, n in failed:
            self.counters.inc(name, n)
        refused = next((r for r in replies if isinstance(r, Exception)), None)
        if refused is not None:
            self.bugs.bug(f"pushing {len(failed)} of this worker's counters", refused)


def take_worker_counters(client: redis.Redis, keys: RedisKeys) -> dict[str, float]:
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys.counters(WORKER_COUNTERS))
    pipe.delete(keys.counters(WORKER_COUNTERS))
    raw = pipe.execute()[0]
    return {k.decode(): float(v) for k, v in raw.items()}


def threaded_server(ctx: Context, sock: socket.socket) -> ThreadedServer:
    return ThreadedServer(create_app(ctx), sock, "flux-http")


def gunicorn_server(settings: Settings, sock: socket.socket) -> GunicornServer:
    cfg = settings.flux
    return GunicornServer(sock, GunicornOptions(
        app="skyline.ingest.flux.wsgi:app", name="skyline-flux", workers=cfg.workers, threads=cfg.threads,
        error_log=settings.var_path / "log" / "flux-gunicorn.log", timeout=30, graceful_timeout=5,
        keep_alive=30,
    ))  # fmt: skip
