"""The one retry policy of every channel.

Retried (DeliveryError): connection errors and timeouts, any HTTP 5xx whatever its body,
HTTP 429 (waiting at least its Retry-After), a 2xx whose body the channel needs but
cannot parse, and the transient errors each API names (Slack's ``ratelimited``, ...).
Everything else is permanent (PermanentError), its reason recorded.  Waits double from
``[alerters] retry_backoff`` up to ``retry_backoff_max``, with jitter (each wait is
drawn between half and all of the doubled value), and a delivery gives up once its next
attempt would fall after its deadline (``give_up_after`` of the channel, default 1 h).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skyline.alerting.base import DeliveryError, PermanentError

if TYPE_CHECKING:  # channels import this module while the settings are being built
    from skyline.settings.alerting import AlertersSection


def is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    raw = _header(headers, "Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v[0] if isinstance(v, list) and v else str(v)
    return None


def http_error(
    what: str, status: int, body: str, headers: Mapping[str, str] | None
) -> DeliveryError:
    """The error of a non-2xx HTTP answer: 429 and 5xx retried, other statuses permanent."""
    text = f"{what} HTTP {status}: {' '.join(body.split())[:200]}".strip()
    if is_transient_status(status):
        return DeliveryError(text, retry_after(headers) if status in (429, 503) else None)
    return PermanentError(text)


@dataclass(frozen=True)
class RetryPolicy:
    backoff: float  # first wait
    backoff_max: float  # cap of one wait
    give_up_after: float  # the deadline, from the first attempt
    attempts: int = 0  # 0: no limit but the deadline

    @classmethod
    def of(cls, cfg: AlertersSection, channel: str) -> RetryPolicy:
        return cls(cfg.retry_backoff, cfg.retry_backoff_max, channel_deadline(cfg, channel),
                   cfg.attempts)  # fmt: skip

    def delay(self, attempt: int, server_asked: float | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        doubled = min(self.backoff_max, self.backoff * 2 ** min(attempt - 1, 30))
        wait = doubled * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not security)
        return max(wait, server_asked) if server_asked is not None else wait

    def exhausted(self, attempt: int, next_at: float, deadline: float) -> bool:
        return bool(self.attempts and attempt >= self.attempts) or next_at > deadline


def channel_deadline(cfg: AlertersSection, channel: str) -> float:
    """The give-up deadline of a channel: its own ``give_up_after``, else [alerters]'s."""
    from skyline.alerting.channels import find  # the channels import this module

    spec = find(channel)
    config = spec.config(cfg, channel) if spec is not None else None
    own = float(getattr(config, "give_up_after", 0.0) or 0.0)
    return own or cfg.give_up_after
