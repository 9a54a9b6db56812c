"""``GET /metrics``: Skyline's own health in the Prometheus exposition format.

Read at each scrape from what the daemons already record (nothing is kept in the web
app's memory, so every gunicorn worker answers the same):

- each daemon's heartbeat (``heartbeat:<daemon>``): up, heartbeat age, runs, the
  duration of its last run (the analyzer's is its analysis time);
- each daemon's counters hash (``counters:<daemon>``): what it counted over the last
  ``[skyline] counters_interval``, as a gauge, and the ingest rate derived from the
  horizon and flux datapoint counters;
- the hand-off streams (``stream:*``): length, and per consumer group the entries
  delivered but not acknowledged and the entries not yet delivered (lag);
- the alert log in SQL: deliveries by channel and outcome, a true counter.

Authentication: like ``/api/``, an ``Authorization: Bearer <token>`` header
(``skyline users token NAME``); Prometheus sends the token with ``authorization:
{credentials: ...}`` in its scrape config.  The path is shared with the Metrics page: a
request with a token, or preferring the exposition formats to HTML, is a scrape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import redis
from flask import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from skyline.db.models import AlertLog
from skyline.runtime.daemons import built
from skyline.webapp.auth import ctx as request_ctx
from skyline.webapp.auth import is_scrape
from skyline.webapp.context import Context
from skyline.webapp.queries import json_object

# Counters that count datapoints taken in, by daemon (the ingest rate).
INGEST_COUNTERS = {
    "horizon": ("datapoints_accepted",),
    "flux": ("datapoints_accepted", "statsd.datapoints_written"),
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _streams(ctx: Context) -> dict[str, str]:
    k = ctx.keys
    return {"anomalies": k.anomalies_stream(), "mirage": k.mirage_stream(),
            "ionosphere": k.ionosphere_stream(), "alerts": k.alerts_stream(),
            "verdicts": k.verdicts_stream()}  # fmt: skip


class SkylineCollector(Collector):
    """One scrape: a handful of pipelined Redis reads and one SQL aggregate."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        yield from self._daemons()
        yield from self._streams()
        yield self._deliveries()

    def _daemons(self) -> Iterator[Metric]:
        names = built()
        pipe = self.ctx.redis.pipeline(transaction=False)
        for name in names:
            pipe.get(self.ctx.keys.heartbeat(name))
            pipe.hgetall(self.ctx.keys.counters(name))
        replies = pipe.execute()
        now = self.ctx.clock()
        interval = self.ctx.settings.skyline.counters_interval
        up = GaugeMetricFamily("skyline_daemon_up", "1 if the daemon's heartbeat is live.",
                               labels=["daemon"])  # fmt: skip
        age = GaugeMetricFamily("skyline_daemon_heartbeat_age_seconds",
                                "Seconds since the daemon's last heartbeat.", labels=["daemon"])  # fmt: skip
        runs = CounterMetricFamily("skyline_daemon_runs", "Runs since the daemon started.",
                                   labels=["daemon"])  # fmt: skip
        run_time = GaugeMetricFamily("skyline_daemon_run_seconds",
                                     "Duration of the daemon's last run (the analyzer's: one "
                                     "analysis pass).", labels=["daemon"])  # fmt: skip
        counter = GaugeMetricFamily("skyline_daemon_counter",
                                    "A daemon counter over the last counters_interval "
                                    "(gauges: their current value).", labels=["daemon", "counter"])  # fmt: skip
        ingest = GaugeMetricFamily("skyline_ingest_datapoints_per_second",
                                   "Datapoints taken in per second over the last "
                                   "counters_interval.", labels=["daemon"])  # fmt: skip
        for i, name in enumerate(names):
            beat = json_object(replies[2 * i])
            counters = {k.decode(): _float(v) for k, v in replies[2 * i + 1].items()}
            up.add_metric([name], 1.0 if beat else 0.0)
            if beat:
                age.add_metric([name], max(0.0, now - (_float(beat.get("ts")) or now)))
                runs.add_metric([name], _float(beat.get("runs")) or 0.0)
                run_time.add_metric([name], _float(beat.get("run_time")) or 0.0)
            for key, value in sorted(counters.items()):
                if value is not None:
                    counter.add_metric([name, key], value)
            if name in INGEST_COUNTERS and counters:
                taken = sum(counters.get(c) or 0.0 for c in INGEST_COUNTERS[name])
                ingest.add_metric([name], taken / interval)
        yield from (up, age, runs, run_time, counter, ingest)

    def _streams(self) -> Iterator[Metric]:
        length = GaugeMetricFamily("skyline_stream_length", "Entries in a hand-off stream.",
                                   labels=["stream"])  # fmt: skip
        pending = GaugeMetricFamily("skyline_stream_pending",
                                    "Entries delivered to a consumer group and not yet "
                                    "acknowledged.", labels=["stream", "group"])  # fmt: skip
        lag = GaugeMetricFamily("skyline_stream_lag",
                                "Entries a consumer group has not been delivered yet.",
                                labels=["stream", "group"])  # fmt: skip
        for label, key in _streams(self.ctx).items():
            length.add_metric([label], float(self.ctx.redis.xlen(key)))
            try:
                groups = self.ctx.redis.xinfo_groups(key)
            except redis.ResponseError:  # the stream does not exist yet
                continue
            for g in groups:
                group = _text(g.get("name"))
                pending.add_metric([label, group], float(g.get("pending") or 0))
                if g.get("lag") is not None:
                    lag.add_metric([label, group], float(g["lag"]))
        yield from (length, pending, lag)

    def _deliveries(self) -> Metric:
        family = CounterMetricFamily("skyline_alert_deliveries",
                                     "Alert delivery attempts recorded in the alert log, by "
                                     "channel and outcome.", labels=["channel", "status"])  # fmt: skip
        query = select(AlertLog.channel, AlertLog.status, func.count()).group_by(
            AlertLog.channel, AlertLog.status
        )
        with self.ctx.engine.connect() as conn:
            for channel, status, n in conn.execute(query):
                family.add_metric([channel, status], float(n))
        return family


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def exposition(ctx: Context) -> bytes:
    """The scrape body."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SkylineCollector(ctx))
    return generate_latest(registry)


def scrape() -> Response | None:
    """A before_request hook run after authentication: answers a Prometheus scrape of
    ``/metrics`` (the same path as the Metrics page, told apart by ``auth.is_scrape``)."""
    if not is_scrape():
        return None
    return Response(exposition(request_ctx()), content_type=CONTENT_TYPE)
