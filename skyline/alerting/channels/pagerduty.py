"""PagerDuty Events API v2 channel: trigger with a stable dedup_key, and resolve.

The dedup_key is ``skyline:<metric>``, so repeated alerts of one metric update one
incident instead of opening many; ``resolve`` (``skyline alerts resolve METRIC``)
closes it.  The dedup_key PagerDuty answers is saved with the delivery, and a retry
sends the same one, so a retried trigger never opens a second incident.  A 2xx whose
body is not PagerDuty's JSON ``{"status": "success"}`` is retried (it did not come from
PagerDuty; the dedup_key makes the repeat harmless).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import SecretStr

from skyline.alerting.base import Alert, DeliveryError, PermanentError, Progress
from skyline.alerting.channels import ChannelSpec, register
from skyline.alerting.http import post_json
from skyline.settings.base import Section, give_up_after, key


class PagerDutyChannel(Section):
    """PagerDuty Events API v2: [alerters.pagerduty]."""

    routing_key: SecretStr = key(SecretStr(""), "Integration (routing) key. Secret.")
    url: str = key("https://events.pagerduty.com/v2/enqueue", "Events API v2 endpoint.")
    severity: Literal["critical", "error", "warning", "info"] = key("error", "Event severity.")
    give_up_after: float = give_up_after()


def dedup_key(metric: str) -> str:
    return f"skyline:{metric}"[:255]


class PagerDuty:
    name = "pagerduty"

    def __init__(self, config: PagerDutyChannel, timeout: float) -> None:
        self.config = config
        self.timeout = timeout

    def _post(self, body: dict) -> str:
        """POST an event; returns the dedup_key PagerDuty answered."""
        key = self.config.routing_key.get_secret_value()
        if not key:
            raise PermanentError("[alerters.pagerduty] routing_key is not set")
        body["routing_key"] = key
        resp = post_json(self.config.url, json.dumps(body).encode(), {}, self.timeout)
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise DeliveryError(f"PagerDuty HTTP {resp.status_code}: not its JSON answer: "
                                f"{' '.join(resp.text.split())[:160]}")  # fmt: skip
        return str(answer.get("dedup_key") or body["dedup_key"])

    def send(self, alert: Alert, progress: Progress) -> None:
        e = alert.event
        key = progress.get("dedup_key") or dedup_key(e.metric)
        answered = self._post({
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": f"Skyline: {alert.summary()}"[:1024],
                "source": e.host or "skyline",
                "severity": self.config.severity,
                "timestamp": alert.when.replace(" UTC", "Z").replace(" ", "T"),
                "component": e.metric[:255],
                "group": e.source,
                "class": "anomaly",
                "custom_details": {
                    "metric": e.metric, "value": e.value, "timestamp": e.timestamp,
                    "triggered_algorithms": list(e.triggered), "scores": e.scores,
                    "event_id": e.id, "labels": e.labels,
                },
            },
            "links": [{"href": alert.link, "text": "Anomaly in Skyline"}],
        })  # fmt: skip
        progress.save("dedup_key", answered)

    def resolve(self, metric: str) -> None:
        self._post({"event_action": "resolve", "dedup_key": dedup_key(metric)})


register(ChannelSpec(
    "pagerduty", PagerDutyChannel, lambda name, config, timeout: PagerDuty(config, timeout),
    boundary_limit=(15, 1800),
))  # fmt: skip
