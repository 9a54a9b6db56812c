"""Alert graphs shared by link: a PNG kept in Redis under an unguessable token.

A channel that cannot attach a file (Slack's incoming webhook) sends a link instead,
``<[alerters] webapp_url>/graphs/<token>.png``, and the webapp serves the image without
login to whoever holds the link (Slack's image fetcher).  The token is the capability:
``secrets.token_urlsafe(32)`` (256 random bits), so the link cannot be guessed, and the
key expires after the channel's TTL.  A token is checked against its exact shape before
any key is built from it: text from a request never names a Redis key.
"""

from __future__ import annotations

import re
import secrets

import redis

from skyline.store.keys import RedisKeys

TOKEN_BYTES = 32
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32): 43 characters, no padding


def is_token(text: str) -> bool:
    return TOKEN.fullmatch(text) is not None


def save(client: redis.Redis, keys: RedisKeys, png: bytes, ttl: int) -> str:
    """Store ``png`` for ``ttl`` seconds; returns its token."""
    if ttl < 1:
        raise ValueError(f"a graph image needs a TTL of at least 1 s, not {ttl}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    client.set(keys.graph_image(token), png, ex=ttl)
    return token


def load(client: redis.Redis, keys: RedisKeys, token: str) -> tuple[bytes, int] | None:
    """The PNG of ``token`` and the seconds it has left; None for a malformed, unknown or
    expired token."""
    if not is_token(token):
        return None
    key = keys.graph_image(token)
    pipe = client.pipeline(transaction=False)
    pipe.get(key)
    pipe.ttl(key)
    png, ttl = pipe.execute()
    if png is None:
        return None
    return bytes(png), max(int(ttl), 0)
