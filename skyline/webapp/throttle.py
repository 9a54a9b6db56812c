"""Login throttling: login attempts are counted per user name and per client address
in Redis fixed windows (shared by every gunicorn worker).  The attempt is counted
*before* the password is checked, so parallel guesses cannot slip past the limit;
past it, the login is refused with 429 and Retry-After until the window ends,
without checking the password.  A right password takes the attempt back.

The per-address limit is a multiple of the per-user one: several people behind one
proxy may each mistype, but one address cannot try many user names quickly.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import redis

from skyline.store.keys import RedisKeys
from skyline.store.window import incr_window, window_start

ADDRESS_FACTOR = 4


class LoginThrottle:
    def __init__(self, client: redis.Redis, keys: RedisKeys, max_failures: int, window: int,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.redis, self.keys, self.clock = client, keys, clock
        self.max_failures, self.window = max_failures, window
        self._start = 0  # the window of the last attempt (one throttle per request)

    def _keys(self, username: str, address: str, start: int) -> list[tuple[str, int]]:
        user = hashlib.sha256(username.encode()).hexdigest()[:32]  # bounded, any characters
        return [
            (self.keys.login_attempts("user", user, start), self.max_failures),
            (self.keys.login_attempts("address", address[:64], start),
             self.max_failures * ADDRESS_FACTOR),
        ]  # fmt: skip

    def attempt(self, username: str, address: str) -> int:
        """Count a login attempt; 0 when it may go ahead, else the seconds to wait."""
        now = self.clock()
        start = self._start = window_start(now, self.window)
        over = False
        for key, limit in self._keys(username, address, start):
            over |= incr_window(self.redis, key, self.window) > limit
        return max(1, int(start + self.window - now)) if over else 0

    def succeeded(self, username: str, address: str) -> None:
        """After ``attempt``, the password was right: the attempt does not count against either limit,
        and the user name's earlier failures are forgiven."""
        # the window the attempt was counted in (the password hash takes a while: the
        # clock may be in the next window by now, where DECR would make a key with no TTL)
        (user_key, _), (address_key, _) = self._keys(username, address, self._start)
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(user_key)
        pipe.decr(address_key)
        pipe.execute()
