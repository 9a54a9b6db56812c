"""Settings of the alert pipeline: panorama, the alerters and their channels, and the
``[[alerts]]`` and ``[[boundary]]`` rule tables."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import SecretStr, ValidationInfo, field_validator

from skyline.settings.base import LoopSection, Section, key


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


def _give_up_after() -> float:
    return key(  # type: ignore[no-any-return]
        0.0,
        "Keep retrying a failed alert on this channel this long; 0: [alerters] give_up_after.",
        "s",
        ge=0,
    )


class SmtpChannel(Section):
    """Email alerts: [alerters.smtp]."""

    host: str = key("", "SMTP server; empty disables email alerts.")
    port: int = key(25, "SMTP port (587 for STARTTLS, 465 for SSL).", "port", ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = key("none", "Transport security.")
    user: str = key("", "Login user; empty for no authentication.")
    password: SecretStr = key(SecretStr(""), "Login password. Secret.")
    sender: str = key("skyline@localhost", "From address.")
    recipients: list[str] = key([], "To addresses.")
    give_up_after: float = _give_up_after()


class SlackChannel(Section):
    """Slack alerts: [alerters.slack]. A bot token posts with chat.postMessage and uploads
    the graph; without one, the incoming webhook gets the message."""

    webhook_url: SecretStr = key(SecretStr(""), "Incoming-webhook URL. Secret.")
    token: SecretStr = key(SecretStr(""), "Bot token (xoxb-...). Secret.")
    channel: str = key("#skyline", "Channel for chat.postMessage and the graph upload.")
    base_url: str = key("https://slack.com/api/", "Slack Web API base URL.")
    give_up_after: float = _give_up_after()


class PagerDutyChannel(Section):
    """PagerDuty Events API v2: [alerters.pagerduty]."""

    routing_key: SecretStr = key(SecretStr(""), "Integration (routing) key. Secret.")
    url: str = key("https://events.pagerduty.com/v2/enqueue", "Events API v2 endpoint.")
    severity: Literal["critical", "error", "warning", "info"] = key("error", "Event severity.")
    give_up_after: float = _give_up_after()


class SyslogChannel(Section):
    """syslog alerts: [alerters.syslog]."""

    address: str = key("/dev/log", "A unix socket path, or host:port (UDP or TCP, see transport).")
    transport: Literal["udp", "tcp"] = key(
        "udp",
        "For a host:port address: udp (fire and forget: no failure is seen) or tcp "
        "(newline-framed; a refused or hung connection is retried).",
    )
    facility: str = key("local4", "Syslog facility.")
    ident: str = key("skyline", "Program name in each message.")
    give_up_after: float = _give_up_after()


class WebhookChannel(Section):
    """One HTTP webhook: [alerters.webhooks.NAME], used by the channel webhook-NAME."""

    url: str = key(..., "Where the JSON payload is POSTed (see docs/alerts.md).")
    secret: SecretStr = key(
        SecretStr(""),
        "Signs each body: header X-Skyline-Signature: sha256=<HMAC-SHA256 hex>. Secret.",
    )
    headers: dict[str, str] = key({}, "Extra HTTP headers.")
    give_up_after: float = _give_up_after()


class AlertersSection(LoopSection):
    """Delivery of alerts."""

    interval: float = key(
        1.0,
        "Longest wait for new alerts before a run ends (the alerters block on the stream).",
        "s",
        gt=0,
    )
    webapp_url: str = key("http://127.0.0.1:1500", "Base URL of the webapp, for links in alerts.")
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
    smtp: SmtpChannel = SmtpChannel()
    slack: SlackChannel = SlackChannel()
    pagerduty: PagerDutyChannel = PagerDutyChannel()
    syslog: SyslogChannel = SyslogChannel()
    webhooks: dict[str, WebhookChannel] = key({}, "Named webhooks: [alerters.webhooks.NAME].")


class AlertRule(Section):
    """One [[alerts]] table: which metrics alert on which channel."""

    pattern: str = key(..., "Metric name, substring, dotted elements or regex.")
    channel: str = key(..., "smtp, slack, pagerduty, webhook-<name>, syslog or an address.")
    expiration: int = key(3600, "At most one alert per metric and channel in this time.", "s", ge=0)
    mirage_hours: int | None = key(None, "Hours of history mirage re-checks over.", "h", ge=1)


class ChannelLimit(Section):
    """A per-channel rate limit of boundary alerts: [boundary_daemon.channel_limits.NAME]."""

    limit: int = key(..., "At most this many boundary alerts on the channel ...", "alerts", ge=1)
    period: int = key(..., "... per this many seconds (a fixed window).", "s", ge=1)


# Skyline's BOUNDARY_ALERTER_OPTS: alerter_limit per alerter_expiration_time.
DEFAULT_CHANNEL_LIMITS = {
    "smtp": ChannelLimit(limit=100, period=60),
    "pagerduty": ChannelLimit(limit=15, period=1800),
    "slack": ChannelLimit(limit=30, period=1800),
}


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
        DEFAULT_CHANNEL_LIMITS,
        "Rate limits of boundary alerts per channel (Skyline's BOUNDARY_ALERTER_OPTS); "
        "alerts past the limit are dropped with the outcome rate_limited. Defaults: smtp "
        "100 per 60 s (also for email-address channels), pagerduty 15 per 1800 s, slack 30 "
        "per 1800 s; a channel not listed is not limited. A table for a channel replaces "
        "that channel's default only.",
    )

    @field_validator("channel_limits", mode="before")
    @classmethod
    def _over_defaults(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value  # let the type check say what is wrong
        return {**DEFAULT_CHANNEL_LIMITS, **value}


_CHANNEL = re.compile(r"^(smtp|slack|pagerduty|syslog|webhook-[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+)$")


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
        for channel in value:
            if not _CHANNEL.match(channel):
                raise ValueError(
                    f"unknown channel {channel!r}: use smtp, slack, pagerduty, syslog, "
                    "webhook-NAME or an email address"
                )
        return value

    @field_validator("min_average_seconds")
    @classmethod
    def _min_average_window(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("min_average", 0) > 0 and value <= 0:
            raise ValueError("min_average needs min_average_seconds > 0")
        return value
