"""PagerDuty Events API v2 channel: trigger with a stable dedup_key, and resolve.

The dedup_key is ``skyline:<metric>``, so repeated alerts of one metric update one
incident instead of opening many; ``resolve`` (``skyline alerts resolve METRIC``)
closes it.
"""

from __future__ import annotations

import json

from skyline.alerters.base import Alert, PermanentError
from skyline.alerters.http import post_json
from skyline.settings_alerting import PagerDutyChannel


def dedup_key(metric: str) -> str:
    return f"skyline:{metric}"[:255]


class PagerDuty:
    name = "pagerduty"

    def __init__(self, config: PagerDutyChannel, timeout: float) -> None:
        self.config = config
        self.timeout = timeout

    def _post(self, body: dict) -> None:
        key = self.config.routing_key.get_secret_value()
        if not key:
            raise PermanentError("[alerters.pagerduty] routing_key is not set")
        body["routing_key"] = key
        post_json(self.config.url, json.dumps(body).encode(), {}, self.timeout)

    def send(self, alert: Alert) -> None:
        e = alert.event
        self._post({
            "event_action": "trigger",
            "dedup_key": dedup_key(e.metric),
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
                    "event_id": e.id,
                },
            },
            "links": [{"href": alert.link, "text": "Anomaly in Skyline"}],
        })  # fmt: skip

    def resolve(self, metric: str) -> None:
        self._post({"event_action": "resolve", "dedup_key": dedup_key(metric)})
