"""Settings of the ingest daemons: horizon (Graphite, UDP) and flux (HTTP, StatsD).

Horizon's port keys are declared by its protocols (``skyline.ingest.horizon.protocols``,
discovered by package name, see ``skyline.settings.extensions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import create_model, field_validator, model_validator

from skyline.settings.base import ListenerSection, Port, key
from skyline.settings.extensions import protocols
from skyline.settings.regexes import check_name_list


class HorizonBase(ListenerSection):
    """Graphite ingest listeners and roomba (trimming)."""

    max_age: int = key(
        3600, "Datapoints older than this (by their timestamp) are rejected.", "s", ge=1
    )
    max_future: int = key(
        60, "Datapoints more than this ahead of the clock are rejected.", "s", ge=0
    )
    max_line_length: int = key(
        4096, "Longest plaintext line accepted; longer lines are rejected.", "bytes", ge=64
    )
    max_pickle_frame: int = key(
        1048576,
        "Largest pickle frame accepted; a larger length prefix closes that connection.",
        "bytes",
        ge=1024,
    )
    max_connections: int = key(
        4096, "Concurrent TCP clients; further connections are closed at once.", "", ge=1
    )
    skip: list[str] = key(
        [],
        "Metric names not to store (Skyline's SKIP_LIST): a dotted prefix such as "
        "'stats.statsd' (matches the name and everything below it), or 're:' and a "
        "regular expression searched anywhere in the name.",
    )
    do_not_skip: list[str] = key(
        [], "Exceptions to skip (Skyline's DO_NOT_SKIP_LIST), in the same forms."
    )
    _names_ok = field_validator("skip", "do_not_skip")(check_name_list)
    batch_points: int = key(
        100000, "A writer batch is sent to Redis at this many datapoints...", "points", ge=1
    )
    batch_interval: float = key(
        0.1, "...or this long after its first datapoint, whichever is first.", "s", gt=0
    )
    queue_high: int = key(
        400000,
        "Datapoints waiting for the writers above which listeners stop reading sockets.",
        "points",
        ge=1,
    )
    queue_low: int = key(
        100000, "Waiting datapoints below which listeners read again.", "points", ge=0
    )
    queue_limit: int = key(
        2000000,
        "Hard limit of waiting datapoints; beyond it datapoints are dropped and counted.",
        "points",
        ge=1,
    )
    roomba_interval: int = key(60, "How often roomba trims the stored series.", "s", ge=1)

    @model_validator(mode="after")
    def _watermarks_ordered(self) -> HorizonBase:
        if not self.queue_low < self.queue_high <= self.queue_limit:
            raise ValueError(
                f"need queue_low < queue_high <= queue_limit, got {self.queue_low}, "
                f"{self.queue_high}, {self.queue_limit}; fix the three values together"
            )
        return self

    roomba_grace: int = key(
        600,
        "Extra history kept beyond full_duration before a series is trimmed; a series is "
        "rewritten about once per grace period.",
        "s",
        ge=0,
    )


def build_horizon_section() -> type[HorizonBase]:
    """[horizon] with the port key of every registered ingest protocol (``line_port``...)."""
    ports: dict[str, Any] = {}
    for spec in sorted(protocols(), key=lambda spec: spec.default_port):
        if spec.port_key in HorizonBase.model_fields or spec.port_key in ports:
            raise ValueError(f"ingest protocol {spec.name!r}: [horizon] already has a "
                             f"{spec.port_key!r} key; give the protocol another port key")  # fmt: skip
        ports[spec.port_key] = (
            Port,
            key(spec.default_port, spec.doc, "port", socket=spec.transport, ge=1, le=65535),
        )
    return create_model(
        "HorizonSection",
        __base__=HorizonBase,
        __module__=__name__,
        __doc__=HorizonBase.__doc__,
        **ports,
    )


if TYPE_CHECKING:

    class HorizonSection(HorizonBase):
        """What type checkers see: the static keys, and a port key per protocol."""

        def __getattr__(self, name: str) -> int: ...

else:
    HorizonSection = build_horizon_section()


class FluxSection(ListenerSection):
    """HTTP, Prometheus remote_write and StatsD ingest."""

    port: Port = key(
        8000, "HTTP port of the flux API (paths under /flux/).", "port", ge=1, le=65535
    )
    statsd_port: Port = key(8125, "StatsD, UDP.", "port", socket="udp", ge=1, le=65535)
    http_server: Literal["gunicorn", "threaded"] = key(
        "gunicorn",
        "What serves the HTTP API: gunicorn worker processes (production) or a threaded "
        "server inside the daemon (tests, development).",
    )
    workers: int = key(2, "gunicorn worker processes.", "", ge=1, le=64)
    threads: int = key(4, "Threads per gunicorn worker (gthread).", "", ge=1, le=64)
    require_key: bool = key(
        True,
        "Every HTTP request needs a valid API key (skyline flux keys add). false accepts "
        "requests without a key and writes them with no namespace prefix.",
    )
    key_cache_ttl: float = key(
        10.0, "How long a worker trusts its copy of the API keys; a revoked key stops "
        "working within this time.", "s", gt=0,
    )  # fmt: skip
    max_age: int = key(
        3600,
        "Datapoints older than this are rejected unless sent with fill (then they may be "
        "as old as skyline.full_duration).",
        "s",
        ge=1,
    )
    max_future: int = key(
        60, "Datapoints more than this ahead of the clock are rejected.", "s", ge=0
    )
    max_body_bytes: int = key(
        10485760, "Largest request body as sent (compressed or not); larger is 413.", "bytes",
        ge=1024,
    )  # fmt: skip
    max_decompressed_bytes: int = key(
        16777216,
        "Largest request body after gzip/snappy decompression; larger is 413 (gzip bombs).",
        "bytes",
        ge=1024,
    )
    request_time_limit: float = key(
        30.0,
        "A request still parsing after this long is refused with 503 (nothing of it stored; "
        "the client retries); a gunicorn worker whose request runs twice as long is replaced.",
        "s",
        gt=0,
    )
    max_metrics_per_request: int = key(
        50000, "Most datapoints (or samples, or fields) in one request; more is 413.", "points",
        ge=1,
    )  # fmt: skip
    rate_limit: int = key(
        200000,
        "Datapoints per second one API key may send, averaged over rate_limit_window; more "
        "is 429. 0 disables the limit.",
        "points/s",
        ge=0,
    )
    rate_limit_window: int = key(10, "Window of the per-key rate limit.", "s", ge=1, le=3600)
    prometheus_max_age: int = key(
        300,
        "remote_write samples older than this are refused with 400, so Prometheus drops "
        "them instead of retrying forever.",
        "s",
        ge=1,
    )
    prometheus_drop_buckets: bool = key(True, "Drop histogram series whose name ends in _bucket.")
    prometheus_drop_labels: list[str] = key(
        [], "Label names left out of Skyline metric names (e.g. ['instance'])."
    )
    prometheus_max_labels: int = key(
        64, "Series with more labels than this are rejected.", "", ge=1, le=1024
    )
    statsd_flush_interval: float = key(
        10.0, "How often aggregated StatsD metrics are written to the store.", "s", gt=0
    )
    statsd_percentiles: list[float] = key(
        [90.0], "Percentiles computed for StatsD timers (mean_90, upper_90, ...)."
    )
    statsd_max_metrics: int = key(
        100000,
        "Most distinct StatsD names held per flush interval; further new names are dropped "
        "and counted.",
        "",
        ge=1,
    )
    statsd_gauge_idle: int = key(
        3600, "A StatsD gauge not updated for this long is no longer sent.", "s", ge=1
    )
    forward_graphite: str = key(
        "",
        "host:port of a Graphite pickle receiver (carbon-relay) to copy every accepted "
        "datapoint to; empty for none.",
    )
    forward_queue: int = key(
        100000,
        "Datapoints waiting to be forwarded to Graphite; beyond it they are dropped and counted.",
        "points",
        ge=1,
    )
