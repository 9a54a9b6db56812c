"""Settings of the alert pipeline: panorama, the alerters and their channels, and the
``[[alerts]]`` and ``[[boundary]]`` rule tables.

Each channel's table (``[alerters.smtp]``, ``[alerters.webhooks.NAME]``...) is the
settings model its module in ``skyline.alerting.channels`` registers; rule channel
names are checked against those channels (see ``skyline.settings.extensions``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationInfo, create_model, field_validator

from skyline.settings.base import LoopSection, Section, key
from skyline.settings.extensions import channels, check_channel
from skyline.settings.selector import SelectorError, parse


class PanoramaSection(LoopSection):
    """Persisting anomalies and verdicts to SQL."""

    interval: float = key(
        1.0,
        "Longest wait for new stream entries before a run ends (panorama blocks on the streams).",
        "s",
        gt=0,
    )
    expiry: int = key(
        900,
        "A detection of the same metric by the same daemon within this long of the last "
        "one recorded is a repeat: counted, not stored again.",
        "s",
        ge=0,
    )
    claim_idle: int = key(
        60,
        "Stream entries a consumer took but did not acknowledge for this long are taken "
        "over by another (a crashed consumer's work is not lost).",
        "s",
        ge=1,
    )


class AlertersBase(LoopSection):
    """Delivery of alerts."""

    interval: float = key(
        1.0,
        "Longest wait for new alerts before a run ends (the alerters block on the stream).",
        "s",
        gt=0,
    )
    webapp_url: str = key(
        "",
        "Base URL of the webapp, for links in alerts; empty means [webapp] url, else "
        "http://<[webapp] bind>:<[webapp] port> (a port moved by --pick-free-ports included).",
    )
    attempts: int = key(
        0,
        "At most this many delivery attempts per alert and channel; 0: no limit but give_up_after.",
        "",
        ge=0,
    )
    retry_backoff: float = key(
        2.0,
        "Wait before the second attempt; doubles for each further one (with jitter).",
        "s",
        gt=0,
    )
    retry_backoff_max: float = key(
        300.0, "Longest wait between two attempts (a longer Retry-After is honoured).", "s", gt=0
    )
    give_up_after: float = key(
        3600.0,
        "Keep retrying a transiently failing alert this long after its first attempt, then "
        "record it failed; a channel's own give_up_after overrides it. Pending retries are "
        "kept in Redis and resumed after a restart.",
        "s",
        gt=0,
    )
    channel_failing_after: float = key(
        300.0,
        "A channel whose every attempt has failed for this long raises the thunder event "
        "skyline.thunder.alerters.<channel>.failing on the other channels.",
        "s",
        gt=0,
    )
    timeout: float = key(10.0, "Timeout of one delivery attempt.", "s", gt=0)
    claim_idle: int = key(
        60,
        "Alerts a crashed alerter took but did not finish are taken over after this long.",
        "s",
        ge=1,
    )
    graph: bool = key(True, "Attach a PNG graph of the metric's window to email and Slack alerts.")


def build_alerters_section() -> type[AlertersBase]:
    """[alerters] with one table per registered channel: ``[alerters.<name>]``, or
    ``[alerters.<table>.NAME]`` (one per instance) for a named channel (webhooks)."""
    fields: dict[str, Any] = {}
    for spec in channels():
        if spec.table_name in AlertersBase.model_fields or spec.table_name in fields:
            raise ValueError(f"alert channel {spec.name!r}: [alerters] already has a "
                             f"{spec.table_name!r} key; give the channel another table")  # fmt: skip
        if spec.named:
            doc = f"Named {spec.table_name}: [alerters.{spec.table_name}.NAME]."
            fields[spec.table_name] = (dict[str, spec.settings], key({}, doc))  # type: ignore[name-defined]
        else:
            fields[spec.table_name] = (spec.settings, spec.settings())
    return create_model(
        "AlertersSection",
        __base__=AlertersBase,
        __module__=__name__,
        __doc__=AlertersBase.__doc__,
        **fields,
    )


if TYPE_CHECKING:

    class AlertersSection(AlertersBase):
        """What type checkers see: the static keys, and a table per registered channel."""

        def __getattr__(self, name: str) -> Any: ...

else:
    AlertersSection = build_alerters_section()


class AlertRule(Section):
    """One [[alerts]] table: which metrics alert on which channel."""

    pattern: str = key(..., "Metric name, substring, dotted elements or regex.")
    channel: str = key(..., "smtp, slack, pagerduty, webhook-<name>, syslog, file or an address.")
    expiration: int = key(3600, "At most one alert per metric and channel in this time.", "s", ge=0)
    mirage_hours: int | None = key(None, "Hours of history mirage re-checks over.", "h", ge=1)
    mirage_resolution: int | None = key(
        None,
        "Bucket width mirage judges the window in; unset: [mirage] rollup_resolution. "
        "Finer than that, the window is read from the raw series (or the remote source), "
        "so without [mirage] graphite_url or prometheus_url mirage_hours must fit in "
        "[skyline] full_duration. Finer buckets dilute a short anomaly less.",
        "s",
        ge=10,
    )
    labels: str = key(
        "", 'Label selector the metric must also match, e.g. {job="api",code=~"5.."} '
        '(Prometheus syntax; use pattern = ".*" to match on labels alone).',
    )  # fmt: skip

    @field_validator("labels")
    @classmethod
    def _labels_parse(cls, value: str) -> str:
        return _check_selector(value)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        return check_channel(value)


# The rule the embedded defaults ship with: the demo's metrics (``skyline demo``, ``make
# run``) alert on the file channel, re-checked by mirage over a day first, so a new user
# sees the whole pipeline (mirage, ionosphere, an alert delivered) with no file to edit.
# Any [[alerts]] table in the settings file replaces it.
# Mirage judges its day in minutes, read from the raw series (the demo backfills a day
# of it), as earthgecko's mirage judges Graphite's 1-minute data: a one-point timeout is
# confirmed wherever it falls in a minute, where 10-minute buckets dilute it.
DEMO_ALERT_RULE = {"pattern": r"^demo\.", "channel": "file", "expiration": 300,
                   "mirage_hours": 24, "mirage_resolution": 60}  # fmt: skip


def default_alert_rules() -> list[AlertRule]:
    """The default of ``alerts`` (built when the settings are, not at import)."""
    return [AlertRule(**DEMO_ALERT_RULE)]  # type: ignore[arg-type]


class ChannelLimit(Section):
    """A per-channel rate limit of boundary alerts: [boundary_daemon.channel_limits.NAME]."""

    limit: int = key(..., "At most this many boundary alerts on the channel ...", "alerts", ge=1)
    period: int = key(..., "... per this many seconds (a fixed window).", "s", ge=1)


def default_channel_limits() -> dict[str, ChannelLimit]:
    """Each channel's default boundary rate limit (Skyline's BOUNDARY_ALERTER_OPTS:
    alerter_limit per alerter_expiration_time), as its module registers it."""
    return {spec.name: ChannelLimit(limit=spec.boundary_limit[0], period=spec.boundary_limit[1])
            for spec in channels() if spec.boundary_limit}  # fmt: skip


def _limits_doc() -> str:
    defaults = ", ".join(f"{name} {lim.limit} per {lim.period} s"
                         for name, lim in default_channel_limits().items())  # fmt: skip
    return (
        "Rate limits of boundary alerts per channel (Skyline's BOUNDARY_ALERTER_OPTS); "
        "alerts past the limit are dropped with the outcome rate_limited. Defaults: "
        f"{defaults or 'none'} (smtp's also for email-address channels); a channel not "
        "listed is not limited. A table for a channel replaces that channel's default only."
    )


class BoundaryDaemonSection(LoopSection):
    """The boundary daemon itself (its rules are the [[boundary]] tables); see docs/boundary.md."""

    interval: float = key(
        2.0,
        "Seconds between two runs; each run reads only the new datapoints of the metrics "
        "a [[boundary]] rule matches.",
        "s",
        gt=0,
    )
    metrics_refresh: float = key(
        60.0,
        "How often the set of metric names is re-read to find metrics that a rule "
        "matches (new metrics are watched from then on).",
        "s",
        gt=0,
    )
    history: int = key(
        3600,
        "Seconds of each watched metric's recent data kept in memory for "
        "detect_drop_off_cliff and min_average (at least the longest min_average_seconds "
        "of its rules is kept).",
        "s",
        ge=60,
    )
    channel_limits: dict[str, ChannelLimit] = key(
        default_channel_limits(),
        _limits_doc(),
        validate_default=True,  # today's channels
    )

    @field_validator("channel_limits", mode="before")
    @classmethod
    def _over_defaults(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value  # let the type check say what is wrong
        return {**default_channel_limits(), **value}


def _check_regex(what: str, pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression ({exc})") from None
    return pattern


class BoundaryRule(Section):
    """One [[boundary]] table: a threshold rule for matching metrics. For each metric and
    algorithm the LAST matching rule in the file applies (Skyline: more specific later
    rules override earlier broad ones); see docs/boundary.md."""

    pattern: str = key(
        ..., "Metric name, substring, dotted elements or regex (must compile as a regex)."
    )
    algorithm: Literal["greater_than", "less_than", "detect_drop_off_cliff"] = key(
        ..., "The test applied to each new datapoint."
    )
    limit: float = key(
        0.0,
        "The threshold of greater_than / less_than (Skyline's TRIGGER_VALUE); for "
        "detect_drop_off_cliff a value > 0 replaces the trigger factor chosen by range.",
        allow_inf_nan=False,
    )
    expiry: int = key(
        1800, "At most one alert per metric, algorithm and channel in this time.", "s", ge=0
    )
    min_average: float = key(
        0.0,
        "Do not judge the metric while its average over min_average_seconds is below this "
        "(0 disables).",
        allow_inf_nan=False,
    )
    min_average_seconds: int = key(600, "Window of min_average.", "s", ge=0)
    alert_threshold: int = key(1, "Consecutive breaches needed before alerting.", "", ge=1)
    channels: list[str] = key(
        ["smtp"],
        "Channels to alert on: smtp, slack, pagerduty, syslog, webhook-NAME or an address.",
        min_length=1,
    )
    excludes: list[str] = key(
        [], "Patterns (same forms as pattern) of metrics this rule does not apply to."
    )
    labels: str = key(
        "", 'Label selector the metric must also match, e.g. {job="api",code=~"5.."} '
        "(Prometheus syntax).",
    )  # fmt: skip

    @field_validator("labels")
    @classmethod
    def _labels_parse(cls, value: str) -> str:
        return _check_selector(value)

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        if not value:
            raise ValueError("an empty pattern would match every metric; name the metrics")
        return _check_regex("pattern", value)

    @field_validator("excludes")
    @classmethod
    def _excludes_compile(cls, value: list[str]) -> list[str]:
        return [_check_regex("exclude", p) for p in value]

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        return [check_channel(channel) for channel in value]

    @field_validator("min_average_seconds")
    @classmethod
    def _min_average_window(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("min_average", 0) > 0 and value <= 0:
            raise ValueError("min_average needs min_average_seconds > 0")
        return value


def _check_selector(value: str) -> str:
    """A rule's ``labels`` must parse as a label selector (empty: no label condition)."""
    if value.strip():
        try:
            parse(value)
        except SelectorError as exc:
            raise ValueError(f"not a label selector: {exc}") from None
    return value
