"""HTTP webhook channel (``webhook-NAME``): a JSON POST, signed with HMAC-SHA256.

Body (documented in docs/alerts.md), compatible in shape with Skyline's http_alerter:
``{"status": {}, "data": {"alert": {...}}}``.  With a secret configured, the header
``X-Skyline-Signature: sha256=<hex HMAC-SHA256 of the body>`` lets the receiver check
the sender; ``X-Skyline-Event-Id`` lets it discard a re-delivery.  Any 2xx is a
delivery (the body is not read); 429 and 5xx are retried, other statuses are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from pydantic import SecretStr

from skyline.alerting.base import Alert, Progress
from skyline.alerting.channels import ChannelSpec, register
from skyline.alerting.http import post_json
from skyline.settings.base import Section, give_up_after, key


class WebhookChannel(Section):
    """One HTTP webhook: [alerters.webhooks.NAME], used by the channel webhook-NAME."""

    url: str = key(..., "Where the JSON payload is POSTed (see docs/alerts.md).")
    secret: SecretStr = key(
        SecretStr(""),
        "Signs each body: header X-Skyline-Signature: sha256=<HMAC-SHA256 hex>. Secret.",
    )
    headers: dict[str, str] = key({}, "Extra HTTP headers.")
    give_up_after: float = give_up_after()


def payload(alert: Alert) -> dict:
    e = alert.event
    return {
        "status": {},
        "data": {
            "alert": {
                "id": e.id,
                "metric": e.metric,
                "timestamp": e.timestamp,
                "value": e.value,
                "source": e.source,
                "expiry": alert.expiration,
                "full_duration": e.full_duration,
                "algorithms_run": list(e.algorithms_run),
                "triggered_algorithms": list(e.triggered),
                "scores": e.scores,
                "link": alert.link,
                "channel": alert.channel,
                "rule": alert.rule_pattern,
                "note": e.note,
                "labels": e.labels,
                "summary": alert.summary(),
            }
        },
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook:
    def __init__(self, name: str, config: WebhookChannel, timeout: float) -> None:
        self.name = name
        self.config = config
        self.timeout = timeout

    def send(self, alert: Alert, progress: Progress) -> None:
        body = json.dumps(payload(alert), separators=(",", ":")).encode()
        headers = {**self.config.headers, "X-Skyline-Event-Id": alert.event.id}
        secret = self.config.secret.get_secret_value()
        if secret:
            headers["X-Skyline-Signature"] = signature(secret, body)
        post_json(self.config.url, body, headers, self.timeout)


register(ChannelSpec(
    "webhook", WebhookChannel, lambda name, config, timeout: Webhook(name, config, timeout),
    table="webhooks", named=True,
))  # fmt: skip
