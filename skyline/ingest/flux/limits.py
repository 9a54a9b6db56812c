"""Request limits: body size, decompressed size (gzip, snappy), datapoints per request
and a per-key rate limit.  Each refusal is an ``HttpError`` carrying the status and
the reason returned to the client as JSON, and is counted by the app."""

from __future__ import annotations

import time
import zlib
from typing import IO

import redis

from skyline.store.keys import RedisKeys
from skyline.store.window import incr_window, window_start


class HttpError(Exception):
    """A request refused with ``status``; ``reason`` is a short counter-friendly word."""

    def __init__(self, status: int, reason: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.extra = status, reason, message, extra

    def body(self) -> dict[str, object]:
        return {"error": self.message, "reason": self.reason, **self.extra}


def read_body(stream: IO[bytes], content_length: int | None, max_bytes: int) -> bytes:
    """The raw body, at most ``max_bytes`` (413 beyond, announced or not)."""
    if content_length is not None and content_length > max_bytes:
        raise HttpError(
            413, "body_too_large", f"request body of {content_length} bytes is over the "
            f"limit of {max_bytes} bytes", limit=max_bytes,
        )  # fmt: skip
    try:
        data = stream.read(max_bytes + 1)
    except (OSError, ValueError) as exc:  # a chunked body whose framing is broken
        raise HttpError(400, "bad_body", f"the request body could not be read: {exc}") from None
    if len(data) > max_bytes:
        raise HttpError(
            413, "body_too_large", f"request body is over the limit of {max_bytes} bytes",
            limit=max_bytes,
        )  # fmt: skip
    return data


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip (or zlib) body, refusing to produce more than ``max_bytes``."""
    wbits = 16 + zlib.MAX_WBITS if data[:2] == b"\x1f\x8b" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise HttpError(400, "bad_gzip", f"body is not valid gzip: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise HttpError(
            413, "decompressed_too_large",
            f"decompressed body is over the limit of {max_bytes} bytes", limit=max_bytes,
        )  # fmt: skip
    if not inflater.eof:
        raise HttpError(400, "bad_gzip", "gzip body is truncated")
    return out


def decode_body(data: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` gzip/deflate/identity; 415 for anything else."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding in ("gzip", "x-gzip", "deflate"):
        return gunzip(data, max_bytes)
    raise HttpError(
        415, "unsupported_encoding", f"Content-Encoding {encoding[:40]!r} is not supported; "
        "send gzip or none",
    )  # fmt: skip


def check_count(n: int, limit: int) -> None:
    if n > limit:
        raise HttpError(
            413, "too_many_metrics", f"{n} datapoints in one request, the limit is {limit}; "
            "split the request", limit=limit,
        )  # fmt: skip


class RateLimiter:
    """Datapoints per key over a fixed window, counted in Redis so every worker agrees.

    The counter key is ``RedisKeys.flux_rate`` with a TTL of two windows (one INCRBY +
    EXPIRE round trip per request).
    """

    def __init__(self, client: redis.Redis, keys: RedisKeys, per_second: int, window: int) -> None:
        self.redis, self.keys = client, keys
        self.limit, self.window = per_second * window, window

    def charge(self, key_id: int, n: int, now: float | None = None) -> None:
        if self.limit <= 0 or n <= 0:
            return
        start = window_start(now if now is not None else time.time(), self.window)
        name = self.keys.flux_rate(key_id, start)
        used = incr_window(self.redis, name, self.window, n)
        if used > self.limit:
            self.redis.decrby(name, n)  # refused datapoints do not use the allowance
            retry = max(1, int(start + self.window - (now or time.time())) + 1)
            raise HttpError(
                429, "rate_limited", f"this key may send {self.limit // self.window} datapoints/s "
                f"(over {self.window}s); retry later", retry_after=retry,
            )  # fmt: skip
