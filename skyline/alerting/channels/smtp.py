"""Email channel (``smtp`` or an email address as the channel): an HTML message with
the graph embedded inline and a link to the anomaly in the webapp.

The message's Message-ID is made once and saved with the delivery, so a retry sends
the same message (a receiving server or client can tell a repeat).  Replies map to the
retry policy by their code: 4xx (``451 try again later``, ``421`` at connect, ``454``
at login) is retried, 5xx is permanent; a refused connection, a timeout (a server
that does not answer) and a dropped connection are retried.
"""

from __future__ import annotations

import html
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal, cast

from pydantic import SecretStr

from skyline.alerting.base import Alert, DeliveryError, PermanentError, Progress
from skyline.alerting.channels import ChannelSpec, register
from skyline.settings.base import Section, give_up_after, key


class SmtpChannel(Section):
    """Email alerts: [alerters.smtp]."""

    host: str = key("", "SMTP server; empty disables email alerts.")
    port: int = key(25, "SMTP port (587 for STARTTLS, 465 for SSL).", "port", ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = key("none", "Transport security.")
    user: str = key("", "Login user; empty for no authentication.")
    password: SecretStr = key(SecretStr(""), "Login password. Secret.")
    sender: str = key("skyline@localhost", "From address.")
    recipients: list[str] = key([], "To addresses.")
    give_up_after: float = give_up_after()


def build_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    e = alert.event
    msg = EmailMessage()
    msg["Subject"] = alert.title[:200]
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["X-Skyline-Event-Id"] = e.id
    msg.set_content(f"{alert.summary()}\n\n{alert.link}\n")
    cid = make_msgid(domain="skyline")
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in [
            ("metric", e.metric),
            *([("labels", alert.labels)] if alert.labels else []),
            ("value", e.value),
            ("time", alert.when),
            ("source", e.source),
            ("triggered", ", ".join(e.triggered)),
        ]  # fmt: skip
    )
    image = f"<p><img src='cid:{cid[1:-1]}' alt='graph'></p>" if alert.graph_png else ""
    msg.add_alternative(
        f"<html><body><h3>{html.escape(alert.title)}</h3><table>{rows}</table>{image}"
        f"<p><a href='{html.escape(alert.link)}'>View the anomaly in Skyline</a></p></body></html>",
        subtype="html",
    )
    if alert.graph_png:
        cast(EmailMessage, msg.get_payload(1)).add_related(
            alert.graph_png, "image", "png", cid=cid, filename="graph.png"
        )
    return msg


class Smtp:
    def __init__(self, name: str, config: SmtpChannel, timeout: float) -> None:
        self.name = name
        self.config = config
        self.timeout = timeout
        self.recipients = [name] if "@" in name else list(config.recipients)

    def send(self, alert: Alert, progress: Progress) -> None:
        cfg = self.config
        if not cfg.host or not self.recipients:
            raise PermanentError("[alerters.smtp] host and recipients must be set for email alerts")
        msg = build_message(alert, cfg.sender, self.recipients)
        message_id = progress.get("message_id")
        if message_id is None:
            message_id = make_msgid(domain="skyline")
            progress.save("message_id", message_id)
        msg["Message-ID"] = message_id
        try:
            cls = smtplib.SMTP_SSL if cfg.security == "ssl" else smtplib.SMTP
            with cls(cfg.host, cfg.port, timeout=self.timeout) as server:
                if cfg.security == "starttls":
                    server.starttls()
                if cfg.user:
                    server.login(cfg.user, cfg.password.get_secret_value())
                server.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(
                min(codes, default=550), f"recipients refused: {exc.recipients}"
            ) from None
        except smtplib.SMTPResponseException as exc:  # sender, data, auth, connect replies
            raise _by_code(exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"SMTP: {exc}"[:300]) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}"[:300]
            ) from None


def _by_code(code: int, text: str) -> DeliveryError:
    """An SMTP reply: 4xx is transient (retried), 5xx and anything else permanent."""
    if 400 <= code < 500:
        return DeliveryError(f"SMTP {text}"[:300])
    return PermanentError(f"SMTP {text}"[:300])


register(ChannelSpec(
    "smtp", SmtpChannel, lambda name, config, timeout: Smtp(name, config, timeout),
    also=r"[^@\s]+@[^@\s]+", also_doc="an email address", graph=True, boundary_limit=(100, 60),
))  # fmt: skip
