"""HTTP delivery shared by the webhook and PagerDuty channels."""

from __future__ import annotations

import requests

from skyline.alerters.base import DeliveryError, PermanentError


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> requests.Response:
    """POST; 2xx returns, 429/5xx/network errors are retryable, other 4xx are permanent."""
    try:
        resp = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                             timeout=timeout)  # fmt: skip
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None
    if resp.status_code == 429 or resp.status_code >= 500:
        raise DeliveryError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    if resp.status_code >= 400:
        raise PermanentError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    return resp
