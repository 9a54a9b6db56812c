"""The flux daemon: HTTP ingest (gunicorn or threaded) and StatsD, with heartbeat.

``setup`` waits for SQL (API keys live there), binds the HTTP and StatsD ports
(a taken port is a StartupError naming the key that moves it), starts the HTTP
server and the StatsD listener.  ``run_once`` (every second) keeps gunicorn
alive, gathers the workers' counters and flushes StatsD aggregates every
``statsd_flush_interval``; a flush that fails because Redis is down is kept and
written on the next try.
"""

from __future__ import annotations

import socket
import time

from skyline.ingest.flux.server import (
    bind,
    gunicorn_server,
    make_context,
    take_worker_counters,
    threaded_server,
)
from skyline.ingest.flux.statsd import Aggregator, StatsdListener
from skyline.ingest.flux.writer import GraphiteForwarder, Points, Rejects
from skyline.runtime.daemon import OUTAGES, Daemon
from skyline.runtime.http_serving import GunicornServer, ThreadedServer


class Flux(Daemon):
    name = "flux"
    interval = 1.0

    def setup(self) -> None:
        cfg = self.settings.flux
        engine = self.open_database()
        http_sock = bind(cfg.bind, cfg.port, socket.SOCK_STREAM, "port")
        try:
            udp_sock = bind(cfg.bind, cfg.statsd_port, socket.SOCK_DGRAM, "statsd_port")
        except Exception:
            http_sock.close()
            raise
        self.ports = {"port": http_sock.getsockname()[1], "statsd_port": udp_sock.getsockname()[1]}
        self.ctx, self.forwarder = make_context(self.settings, self.redis, self.counters, engine)
        self.aggregator = Aggregator(
            self.counters, cfg.statsd_percentiles, cfg.statsd_max_metrics, cfg.statsd_gauge_idle
        )
        self.statsd = StatsdListener(udp_sock, self.aggregator, self.counters)
        self.statsd.start()
        self.http: GunicornServer | ThreadedServer
        if cfg.http_server == "gunicorn":
            self.http = gunicorn_server(self.settings, http_sock)
        else:
            self.http = threaded_server(self.ctx, http_sock)
        self.http.start()
        self._http_sock = http_sock
        self._pending: list[tuple[str, float, float]] | None = None
        self._next_flush = time.monotonic() + cfg.statsd_flush_interval
        ports = ", ".join(f"{k}={v}" for k, v in self.ports.items())
        self.log.info("listening on %s: %s (http: %s)", cfg.bind, ports, cfg.http_server)

    def run_once(self) -> None:
        if not self.http.check():
            self.counters.inc("http_server_restarts")
        if isinstance(self.http, GunicornServer):
            for name, n in take_worker_counters(self.redis, self.keys).items():
                self.counters.inc(name, n)
        if time.monotonic() >= self._next_flush or self._pending is not None:
            self.flush_statsd()

    def flush_statsd(self) -> None:
        interval = self.settings.flux.statsd_flush_interval
        if self._pending is None:
            self._next_flush = time.monotonic() + interval
            self._pending = self.aggregator.flush(self.clock(), interval)
        points, rejects = Points(), Rejects()
        now = self.clock()
        for name, ts, value in self._pending:
            self.ctx.ingest.check(points, rejects, name, ts, value, now=now)
        stored = self.ctx.ingest.write(points, rejects)  # OUTAGES: kept in _pending, retried
        self.counters.inc("statsd.datapoints_written", stored)
        self._pending = None

    def flush(self) -> None:
        if not hasattr(self, "http"):
            return
        self.http.stop()
        self._http_sock.close()
        self.statsd.stop()
        self._next_flush = 0.0
        try:
            self.flush_statsd()
        except OUTAGES as exc:
            self.log.warning("stop: StatsD aggregates not written (%s)", exc)
        if isinstance(self.forwarder, GraphiteForwarder):
            self.forwarder.stop()
