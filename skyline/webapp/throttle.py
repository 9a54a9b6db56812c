"""Login throttling: failed logins are counted per user name and per client address
in Redis (shared by every gunicorn worker); past the limit, logins are refused with
429 and Retry-After until the window ends, without checking the password, so a
password cannot be guessed faster than ``max_failures`` per ``window``.

The per-address limit is a multiple of the per-user one: several people behind one
proxy may each mistype, but one address cannot try many user names quickly.
"""

from __future__ import annotations

import hashlib

import redis

from skyline.redis_keys import RedisKeys

ADDRESS_FACTOR = 4


class LoginThrottle:
    def __init__(
        self, client: redis.Redis, keys: RedisKeys, max_failures: int, window: int
    ) -> None:
        self.redis, self.keys = client, keys
        self.max_failures, self.window = max_failures, window

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        user = hashlib.sha256(username.encode()).hexdigest()[:32]  # bounded, any characters
        return [
            (self.keys.login_failures("user", user), self.max_failures),
            (self.keys.login_failures("address", address[:64]), self.max_failures * ADDRESS_FACTOR),
        ]

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until a login for ``username`` from ``address`` is allowed; 0 now."""
        pairs = self._keys(username, address)
        pipe = self.redis.pipeline(transaction=False)
        for key, _ in pairs:
            pipe.get(key)
            pipe.ttl(key)
        replies = pipe.execute()
        wait = 0
        for (_, limit), count, ttl in zip(pairs, replies[::2], replies[1::2], strict=True):
            if count is not None and int(count) >= limit:
                wait = max(wait, ttl if ttl > 0 else self.window)
        return wait

    def failed(self, username: str, address: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key, _ in self._keys(username, address):
            pipe.incr(key)
            pipe.expire(key, self.window, nx=True)
        pipe.execute()

    def succeeded(self, username: str, address: str) -> None:
        """A right password clears that user's count (not the address's)."""
        self.redis.delete(self._keys(username, address)[0][0])
