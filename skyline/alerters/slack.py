"""Slack channel: with a bot token, chat.postMessage and the graph uploaded to the
channel (files_upload_v2); with only an incoming-webhook URL, the message alone."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from skyline.alerters.base import Alert, DeliveryError, PermanentError
from skyline.settings_alerting import SlackChannel

RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout"}  # fmt: skip


def text(alert: Alert) -> str:
    e = alert.event
    return (f":rotating_light: *Anomaly* `{e.metric}` = {e.value!r} at {alert.when}\n"
            f"Triggered {len(e.triggered)} of {len(e.algorithms_run)}: {', '.join(e.triggered)}\n"
            f"<{alert.link}|View in Skyline>")  # fmt: skip


class Slack:
    name = "slack"

    def __init__(self, config: SlackChannel, timeout: float) -> None:
        self.config = config
        self.timeout = int(max(1, timeout))

    def send(self, alert: Alert) -> None:
        token = self.config.token.get_secret_value()
        if token:
            self._post_with_token(token, alert)
        elif self.config.webhook_url.get_secret_value():
            self._post_webhook(alert)
        else:
            raise PermanentError("[alerters.slack] needs a token or a webhook_url")

    def _post_with_token(self, token: str, alert: Alert) -> None:
        client = WebClient(token=token, base_url=self.config.base_url, timeout=self.timeout)
        try:
            client.chat_postMessage(channel=self.config.channel, text=text(alert))
            if alert.graph_png:
                client.files_upload_v2(channel=self._channel_id(client), content=alert.graph_png,
                                       filename="anomaly.png", title=alert.event.metric[:200])  # fmt: skip
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            kind = DeliveryError if error in RETRYABLE_ERRORS else PermanentError
            raise kind(f"Slack API error: {error or exc}"[:300]) from None
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack: {exc}"[:300]) from None

    def _channel_id(self, client: WebClient) -> str:
        """files_upload_v2 wants a channel id; a name is looked up once."""
        channel = self.config.channel
        if not channel.startswith("#"):
            return channel
        if not hasattr(self, "_cached_id"):
            found = client.conversations_list(limit=1000)
            ids = {f"#{c['name']}": c["id"] for c in found.get("channels", [])}
            self._cached_id = ids.get(channel, channel)
        return self._cached_id

    def _post_webhook(self, alert: Alert) -> None:
        hook = WebhookClient(self.config.webhook_url.get_secret_value(), timeout=self.timeout)
        try:
            resp = hook.send(text=text(alert))
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack webhook: {exc}"[:300]) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise DeliveryError(f"Slack webhook HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise PermanentError(f"Slack webhook HTTP {resp.status_code}: {resp.body[:200]}")
