"""An analyzer's share of the metrics when several run against one store.

The live analyzers (``skyline.runtime.membership``) split the metrics by rendezvous
hash (``skyline.runtime.shares``); each sweeps only its own.  Arrivals still come
through one changed set that horizon and flux fill and every analyzer pops: a
popped name this member does not own goes to its owner's own set
(``RedisKeys.member_changed``), which only the owner pops.  Nothing is lost when an
analyzer dies:

* names waiting in its own set are moved to their new owners by whichever
  survivor first sees its lease run out (SPOP, so each name moves once);
* every metric it owned is in a survivor's *acquired* list: on a membership change
  each member sweeps the metrics it gained before anything else, so the dead
  member's share is analysed within one lease plus one pass (docs/scaling.md);
* names it had popped but not analysed when it died may belong to anyone: when a
  member is seen expired, every survivor starts a sweep of its whole share at once
  (the metrics it gained first).

A member always counts itself live (it is running this code), so a lone analyzer
owns everything even before its first renewal is visible.  Views of the member list
may differ for a pass; a name routed to a member that does not think it owns it is
routed again by that member's view, and a metric two members both think theirs is
analysed twice (the detector state and the event ids make that harmless).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis

from skyline.runtime.membership import Member, Membership
from skyline.runtime.shares import Shares
from skyline.store.keys import RedisKeys

POP_BATCH = 5000
ROUTED_TTL = 86400


class Sharding:
    """This analyzer's view of the members and which of the metrics are its own."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, membership: Membership) -> None:
        self.redis, self.keys, self.membership = client, keys, membership
        self.me = membership.id
        self.shares = Shares([self.me])
        self.routed = 0  # names handed to their owner's set
        self.recovered = 0  # names moved out of a dead member's set
        self._seen_dead: set[str] = set()

    @property
    def members(self) -> list[str]:
        return self.shares.members

    def refresh(self) -> tuple[Shares | None, list[str]]:
        """Look at the members; recover what expired members left in their sets.
        Returns the previous assignment when the live list changed (else None) and
        the members newly seen expired (they may have died holding popped names)."""
        live, expired = self.membership.look()
        expired = [m for m in expired if m.id != self.me]  # late renewing, not dead
        ids = sorted({m.id for m in live} | {self.me})
        old = None
        if ids != self.shares.members:
            old, self.shares = self.shares, Shares(ids)
        died = [m.id for m in expired if m.id not in self._seen_dead]
        self._seen_dead = {m.id for m in expired}
        for member in expired:
            self._recover(member)
        return old, died

    def mine(self, metrics: Sequence[str]) -> list[str]:
        return self.shares.mine(self.me, metrics)

    def acquired(self, old: Shares, mine: Sequence[str]) -> list[str]:
        """Of ``mine`` (this member's metrics now), those it did not own under ``old``."""
        if not mine or old.members == [self.me]:
            return []
        before = set(old.mine(self.me, mine))
        return [m for m in mine if m not in before]

    def route(self, names: Sequence[str]) -> list[str]:
        """The names this member owns; each other name is added to its owner's set."""
        if self.shares.members == [self.me] or not names:
            return list(names)
        mine: list[str] = []
        others: dict[str, list[str]] = {}
        for name, owner in zip(names, self.shares.owners(names), strict=True):
            if owner == self.me:
                mine.append(name)
            else:
                others.setdefault(owner, []).append(name)
        if others:
            pipe = self.redis.pipeline(transaction=False)
            for owner, part in others.items():
                key = self.keys.member_changed(owner)
                pipe.sadd(key, *part)
                pipe.expire(key, ROUTED_TTL)
            pipe.execute()
            self.routed += sum(len(p) for p in others.values())
        return mine

    def pop_own(self, limit: int) -> list[str]:
        """Names other members routed to this one (at most ``limit``)."""
        return self._pop(self.keys.member_changed(self.me), limit)

    def give_back(self) -> int:
        """At a clean stop: move this member's routed names back to the changed set."""
        names = self._pop(self.keys.member_changed(self.me), 1 << 62)
        if names:
            self.redis.sadd(self.keys.changed(), *names)
        return len(names)

    def _recover(self, member: Member) -> None:
        names = self._pop(self.keys.member_changed(member.id), 1 << 62)
        if names:
            self.recovered += len(names)
            # to the owners by this view; our own stay in our set for the next pop
            self.route_all(names)

    def route_all(self, names: Sequence[str]) -> None:
        mine = self.route(names)
        if mine:
            key = self.keys.member_changed(self.me)
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(key, *mine)
            pipe.expire(key, ROUTED_TTL)
            pipe.execute()

    def _pop(self, key: str, limit: int) -> list[str]:
        names: list[str] = []
        while len(names) < limit:
            popped = cast(list[bytes] | None, self.redis.spop(key, POP_BATCH))
            if not popped:
                break
            names += [m.decode() if isinstance(m, bytes) else m for m in popped]
        return names
