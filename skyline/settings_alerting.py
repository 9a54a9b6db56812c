"""Settings of the alert pipeline: panorama, the alerters and their channels, and the
``[[alerts]]`` and ``[[boundary]]`` rule tables."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from skyline.settings_base import LoopSection, Section, key


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


class SmtpChannel(Section):
    """Email alerts: [alerters.smtp]."""

    host: str = key("", "SMTP server; empty disables email alerts.")
    port: int = key(25, "SMTP port (587 for STARTTLS, 465 for SSL).", "port", ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = key("none", "Transport security.")
    user: str = key("", "Login user; empty for no authentication.")
    password: SecretStr = key(SecretStr(""), "Login password. Secret.")
    sender: str = key("skyline@localhost", "From address.")
    recipients: list[str] = key([], "To addresses.")


class SlackChannel(Section):
    """Slack alerts: [alerters.slack]. A bot token posts with chat.postMessage and uploads
    the graph; without one, the incoming webhook gets the message."""

    webhook_url: SecretStr = key(SecretStr(""), "Incoming-webhook URL. Secret.")
    token: SecretStr = key(SecretStr(""), "Bot token (xoxb-...). Secret.")
    channel: str = key("#skyline", "Channel for chat.postMessage and the graph upload.")
    base_url: str = key("https://slack.com/api/", "Slack Web API base URL.")


class PagerDutyChannel(Section):
    """PagerDuty Events API v2: [alerters.pagerduty]."""

    routing_key: SecretStr = key(SecretStr(""), "Integration (routing) key. Secret.")
    url: str = key("https://events.pagerduty.com/v2/enqueue", "Events API v2 endpoint.")
    severity: Literal["critical", "error", "warning", "info"] = key("error", "Event severity.")


class SyslogChannel(Section):
    """syslog alerts: [alerters.syslog]."""

    address: str = key("/dev/log", "A unix socket path, or host:port for UDP syslog.")
    facility: str = key("local4", "Syslog facility.")
    ident: str = key("skyline", "Program name in each message.")


class WebhookChannel(Section):
    """One HTTP webhook: [alerters.webhooks.NAME], used by the channel webhook-NAME."""

    url: str = key(..., "Where the JSON payload is POSTed (see docs/alerts.md).")
    secret: SecretStr = key(
        SecretStr(""),
        "Signs each body: header X-Skyline-Signature: sha256=<HMAC-SHA256 hex>. Secret.",
    )
    headers: dict[str, str] = key({}, "Extra HTTP headers.")


class AlertersSection(LoopSection):
    """Delivery of alerts."""

    interval: float = key(
        1.0,
        "Longest wait for new alerts before a run ends (the alerters block on the stream).",
        "s",
        gt=0,
    )
    webapp_url: str = key("http://127.0.0.1:1500", "Base URL of the webapp, for links in alerts.")
    attempts: int = key(5, "Delivery attempts per alert and channel before giving up.", "", ge=1)
    retry_backoff: float = key(
        2.0, "Wait before the second attempt; doubles for each further one.", "s", gt=0
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


class BoundaryDaemonSection(LoopSection):
    """The boundary daemon itself (its rules are the [[boundary]] tables)."""


class BoundaryRule(Section):
    """One [[boundary]] table: a threshold rule for matching metrics."""

    pattern: str = key(..., "Metric name, substring, dotted elements or regex.")
    algorithm: Literal["greater_than", "less_than", "detect_drop_off_cliff"] = key(
        ..., "The test applied to the newest datapoint."
    )
    limit: float = key(0.0, "The threshold of greater_than / less_than.")
    expiry: int = key(
        1800, "At most one alert per metric, algorithm and channel in this time.", "s", ge=0
    )
    min_average: float = key(
        0.0, "Skip the metric while its average over min_average_seconds is below this."
    )
    min_average_seconds: int = key(600, "Window of min_average.", "s", ge=0)
    alert_threshold: int = key(1, "Consecutive breaches needed before alerting.", "", ge=1)
    channels: list[str] = key(["smtp"], "Channels to alert on.")
