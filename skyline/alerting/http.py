"""HTTP delivery shared by the webhook and PagerDuty channels."""

from __future__ import annotations

import requests

from skyline.alerting.base import DeliveryError
from skyline.alerting.retry import http_error


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> requests.Response:
    """POST; 2xx returns.  Connection errors, timeouts, 429 (with its Retry-After) and every
    5xx, whatever its body, are retryable; other statuses are permanent."""
    try:
        resp = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                             timeout=timeout)  # fmt: skip
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None
    if not 200 <= resp.status_code < 300:
        raise http_error("", resp.status_code, resp.text, resp.headers)
    return resp
