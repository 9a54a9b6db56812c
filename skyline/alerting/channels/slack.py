"""Slack channel: with a bot token, chat.postMessage and then the graph uploaded into
the message's thread (files_upload_v2); with only an incoming-webhook URL (which cannot
upload a file), the message as Block Kit with an ``image`` block whose ``image_url``
Slack downloads: the graph the alerters stored for the webapp to serve (``graph_link``;
only with ``[alerters] webapp_url`` set), else the text alone.  If Slack cannot fetch
the image it refuses the message (HTTP 400 ``invalid_blocks``): the text is sent alone
and the alert is delivered with a note, as when the token path's upload fails.

The two steps are retried separately: the message's ``ts`` is saved once it is posted,
so a failed graph upload is retried without posting the message again.  Errors follow
the one retry policy (skyline.alerting.retry): the HTTP status decides first (any 5xx
and 429 are retried whatever the body says), then Slack's ``error`` field (its transient
errors are retried, the rest are permanent); an HTTP 200 whose body is not Slack's JSON
is retried, since it did not come from Slack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from skyline.alerting.base import Alert, DeliveryError, PermanentError, Progress
from skyline.alerting.channels import ChannelSpec, register
from skyline.alerting.retry import http_error, is_transient_status, retry_after
from skyline.settings.base import Section, give_up_after, key

RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout", "team_added_to_org"}  # fmt: skip
NOT_JSON = "Received a response in a non-JSON format"  # slack_sdk's error for a non-JSON body


class SlackChannel(Section):
    """Slack alerts: [alerters.slack]. A bot token posts with chat.postMessage and uploads
    the graph; without one, the incoming webhook gets the message, with the graph as an
    image Slack fetches from [alerters] webapp_url (when set)."""

    webhook_url: SecretStr = key(SecretStr(""), "Incoming-webhook URL. Secret.")
    token: SecretStr = key(SecretStr(""), "Bot token (xoxb-...). Secret.")
    channel: str = key("#skyline", "Channel for chat.postMessage and the graph upload.")
    base_url: str = key("https://slack.com/api/", "Slack Web API base URL.")
    image_ttl: int = key(
        604800,
        "Webhook only: how long the graph linked from the message stays at [alerters] "
        "webapp_url/graphs/<token>.png (Slack downloads it when the message is posted; "
        "clients may fetch it again later). Needs [alerters] webapp_url to be set.",
        "s",
        ge=1,
    )
    give_up_after: float = give_up_after()


def graph_link(config: SlackChannel) -> int:
    """The image_ttl of a webhook-only Slack (it links its graph); 0 with a token (it
    uploads the graph)."""
    webhook_only = not config.token.get_secret_value() and config.webhook_url.get_secret_value()
    return config.image_ttl if webhook_only else 0


def text(alert: Alert) -> str:
    e = alert.event
    labels = f" `{alert.labels}`" if alert.labels else ""
    if e.note:
        return f":rotating_light: `{e.metric}`{labels} at {alert.when}\n{e.note}\n<{alert.link}|View in Skyline>"
    return (f":rotating_light: *Anomaly* `{e.metric}`{labels} = {e.value!r} at {alert.when}\n"
            f"Triggered {len(e.triggered)} of {len(e.algorithms_run)}: {', '.join(e.triggered)}\n"
            f"<{alert.link}|View in Skyline>")  # fmt: skip


def blocks(alert: Alert, image_url: str) -> list[dict]:
    """The message as Block Kit: its text in a section, then the graph (Slack's limits:
    3000 characters of section text and of image_url, 2000 of alt_text and title)."""
    metric = alert.event.metric
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text(alert)[:3000]}},
        {"type": "image", "image_url": image_url[:3000], "alt_text": f"graph of {metric}"[:2000],
         "title": {"type": "plain_text", "text": metric[:2000]}},
    ]  # fmt: skip


IMAGE_REFUSED = ("Slack webhook HTTP 400 invalid_blocks: Slack could not fetch the graph "
                 "from [alerters] webapp_url")  # fmt: skip


def classify(exc: SlackApiError) -> DeliveryError:
    """A Slack Web API failure as a retryable DeliveryError or a PermanentError."""
    resp = exc.response
    status = int(getattr(resp, "status_code", 0) or 0)
    data = resp.data if resp is not None and isinstance(resp.data, dict) else {}
    error = str(data.get("error", "") or "")
    headers = dict(resp.headers) if resp is not None and resp.headers else {}
    if is_transient_status(status):
        return DeliveryError(f"Slack HTTP {status}: {error[:200]}", retry_after(headers))
    if not error or error.startswith(NOT_JSON):
        return DeliveryError(f"Slack HTTP {status}: a body that is not Slack's JSON: {error[:160]}")
    if error in RETRYABLE_ERRORS:
        return DeliveryError(f"Slack API error: {error}", retry_after(headers))
    return PermanentError(f"Slack API error: {error} (HTTP {status})"[:300])


def _call(what: str, fn: Callable[[], SlackResponse]) -> SlackResponse:
    try:
        return fn()
    except SlackApiError as exc:
        raise classify(exc) from None
    except (SlackClientError, OSError) as exc:
        raise DeliveryError(f"Slack {what}: {type(exc).__name__}: {exc}"[:300]) from None


class Slack:
    name = "slack"

    def __init__(self, config: SlackChannel, timeout: float) -> None:
        self.config = config
        self.timeout = timeout

    def send(self, alert: Alert, progress: Progress) -> str | None:
        token = self.config.token.get_secret_value()
        if token:
            return self._post_with_token(token, alert, progress)
        if self.config.webhook_url.get_secret_value():
            return self._post_webhook(alert, progress)
        raise PermanentError("[alerters.slack] needs a token or a webhook_url")

    def _client(self, token: str) -> WebClient:
        # retry_handlers=[]: our retry policy is the only one, so one attempt is one request
        return WebClient(token=token, base_url=self.config.base_url, timeout=self.timeout,  # type: ignore[arg-type]
                         retry_handlers=[])  # fmt: skip

    def _post_with_token(self, token: str, alert: Alert, progress: Progress) -> str | None:
        client = self._client(token)
        ts = progress.get("message_ts")
        if ts is None:
            resp = _call("chat.postMessage", lambda: client.chat_postMessage(
                channel=self.config.channel, text=text(alert)))  # fmt: skip
            ts = str(resp.get("ts") or "")
            if not ts:
                raise DeliveryError("Slack chat.postMessage: ok without a ts")
            progress.save("message_ts", ts)
            progress.save("channel_id", str(resp.get("channel") or ""))
        if alert.graph_png and progress.get("graph") is None:
            return self._upload_graph(client, alert, progress, ts)
        return None

    def _upload_graph(
        self, client: WebClient, alert: Alert, progress: Progress, ts: str
    ) -> str | None:
        """The graph into the message's thread.  A permanent failure here does not undo
        the message: the alert is delivered, and the note says the graph is missing."""
        channel = progress.get("channel_id") or self._channel_id(client)
        try:
            resp = _call("files_upload_v2", lambda: client.files_upload_v2(
                channel=channel, content=alert.graph_png, filename="anomaly.png",
                title=alert.event.metric[:200], thread_ts=ts))  # fmt: skip
        except PermanentError as exc:
            progress.save("graph", "failed")
            return f"message posted; graph not attached: {exc}"[:300]
        file = resp.get("file")
        progress.save(
            "graph", str(file.get("id", "uploaded")) if isinstance(file, dict) else "uploaded"
        )
        return None

    def _channel_id(self, client: WebClient) -> str:
        """files_upload_v2 wants a channel id; a name is looked up once."""
        channel = self.config.channel
        if not channel.startswith("#"):
            return channel
        if not hasattr(self, "_cached_id"):
            found = _call("conversations.list", lambda: client.conversations_list(limit=1000))
            channels: list[dict[str, str]] = found.get("channels", [])
            ids = {f"#{c['name']}": c["id"] for c in channels}
            self._cached_id = ids.get(channel, channel)
        return self._cached_id

    def _post_webhook(self, alert: Alert, progress: Progress) -> str | None:
        """Text and image blocks when the alert has a graph link; Slack refusing the image
        (``invalid_blocks``) is remembered, and the text goes alone, now and on retries."""
        if alert.graph_url and progress.get("graph") is None:
            message = {"text": text(alert), "blocks": blocks(alert, alert.graph_url)}
            status, body, headers = self._hook(**message)
            if not (status == 400 and body.strip().startswith("invalid_blocks")):
                _raise_unless_2xx(status, body, headers)
                return None
            progress.save("graph", "failed")
        _raise_unless_2xx(*self._hook(text=text(alert)))
        if progress.get("graph") == "failed":
            return f"message posted; graph not attached: {IMAGE_REFUSED}"
        return None

    def _hook(self, **message: Any) -> tuple[int, str, Mapping[str, Any]]:
        """One POST to the incoming webhook: (status, body, headers)."""
        hook = WebhookClient(self.config.webhook_url.get_secret_value(), timeout=self.timeout,  # type: ignore[arg-type]
                             retry_handlers=[])  # fmt: skip
        try:
            resp = hook.send(**message)
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack webhook: {type(exc).__name__}: {exc}"[:300]) from None
        return resp.status_code, resp.body or "", resp.headers or {}


def _raise_unless_2xx(status: int, body: str, headers: Mapping[str, Any]) -> None:
    if not 200 <= status < 300:
        raise http_error("Slack webhook", status, body, headers)


register(ChannelSpec(
    "slack", SlackChannel, lambda name, config, timeout: Slack(config, timeout),
    graph=True, graph_link=graph_link, boundary_limit=(30, 1800),
))  # fmt: skip
