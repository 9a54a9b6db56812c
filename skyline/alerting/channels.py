"""Channel names to channel objects.

``smtp`` (or an email address), ``slack``, ``pagerduty``, ``syslog`` and
``webhook-NAME`` (``[alerters.webhooks.NAME]``).  A name that is not configured
becomes a channel whose every delivery fails permanently, saying why, so a typo in
a rule shows up in the alert log instead of silently dropping alerts.
"""

from __future__ import annotations

from skyline.alerting.base import Alert, Channel, PermanentError, Progress
from skyline.alerting.pagerduty import PagerDuty
from skyline.alerting.slack import Slack
from skyline.alerting.smtp import Smtp
from skyline.alerting.syslog import Syslog
from skyline.alerting.webhook import Webhook
from skyline.settings.alerting import AlertersSection


class Unconfigured:
    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason

    def send(self, alert: Alert, progress: Progress) -> None:
        raise PermanentError(self.reason)


def make_channel(name: str, cfg: AlertersSection) -> Channel:
    if name == "smtp" or "@" in name:
        return Smtp(name, cfg.smtp, cfg.timeout)
    if name == "slack":
        return Slack(cfg.slack, cfg.timeout)
    if name == "pagerduty":
        return PagerDuty(cfg.pagerduty, cfg.timeout)
    if name == "syslog":
        return Syslog(cfg.syslog, cfg.timeout)
    if name.startswith("webhook-"):
        hook = cfg.webhooks.get(name.removeprefix("webhook-"))
        if hook is not None:
            return Webhook(name, hook, cfg.timeout)
        return Unconfigured(name, f"no [alerters.webhooks.{name.removeprefix('webhook-')}] table")
    return Unconfigured(name, f"unknown channel {name!r}: use smtp, slack, pagerduty, syslog, "
                              "webhook-NAME or an email address")  # fmt: skip


def wants_graph(name: str) -> bool:
    return name in ("smtp", "slack") or "@" in name
