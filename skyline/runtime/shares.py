"""Which member of a daemon kind owns which metric: rendezvous (highest random
weight) hashing over the live members.

Every metric goes to the member whose ``mix(hash(metric) ^ hash(member))`` is
highest.  Each member sees the same live list (``skyline.runtime.membership``), so
they agree without talking to each other; when a member joins it takes about 1/N of
every other member's metrics, and when one leaves only its own metrics move (each
to the member that scored second for it).  ``utils/bench/shards.py`` compares this
with a consistent-hash ring and jump hash and checks balance and movement on one
million names (docs/scaling.md).

A name's hash folds its UTF-8 bytes, 8 at a time (little-endian words, the last
padded with zeros, the byte length first), through SplitMix64's finaliser: stable
across processes, machines and Python versions (unlike ``hash()``), and computed
for a whole batch of names at once in numpy (names grouped by word count), since an
analyzer hashes every name it routes or sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def name_hash(name: str) -> int:
    """A stable 64-bit hash of a metric or member name."""
    return int(name_hashes([name])[0])


def name_hashes(names: Iterable[str]) -> np.ndarray:
    """``name_hash`` of each name, as uint64, vectorised over names of one length
    in 8-byte words."""
    encoded = [n.encode() for n in names]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    words = (lengths + 7) // 8
    out = np.empty(len(encoded), dtype=np.uint64)
    for w in np.unique(words).tolist():
        idx = np.flatnonzero(words == w)
        h = mix(lengths[idx].astype(np.uint64) + _GOLDEN)
        if w:
            block = np.array([encoded[i] for i in idx.tolist()], dtype=f"S{8 * w}")
            mat = block.view("<u8").reshape(len(idx), w)
            with np.errstate(over="ignore"):
                for j in range(w):
                    h = mix((h ^ mat[:, j]) + _GOLDEN)
        out[idx] = h
    return out


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit flips about half the output bits."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def owner_index(metric_hashes: np.ndarray, member_hashes: np.ndarray) -> np.ndarray:
    """For each metric hash, the position in ``member_hashes`` of its owner (int64);
    -1 for every metric when there are no members."""
    if len(member_hashes) == 0:
        return np.full(len(metric_hashes), -1, dtype=np.int64)
    best = np.zeros(len(metric_hashes), dtype=np.uint64)
    owner = np.zeros(len(metric_hashes), dtype=np.int64)
    for i, m in enumerate(member_hashes.tolist()):
        score = mix(metric_hashes ^ np.uint64(m))
        better = score > best
        best[better] = score[better]
        owner[better] = i
    return owner


class Shares:
    """The assignment for one list of live members (ids); ``owner_of`` and ``mine``
    answer for metric names."""

    def __init__(self, members: Sequence[str]) -> None:
        self.members = sorted(members)
        self._hashes = name_hashes(self.members)

    def owners(self, metrics: Sequence[str]) -> list[str]:
        """The owning member id of each metric ('' when there are no members)."""
        idx = owner_index(name_hashes(metrics), self._hashes).tolist()
        return [self.members[i] if i >= 0 else "" for i in idx]

    def mine(self, me: str, metrics: Sequence[str]) -> list[str]:
        """The metrics of ``metrics`` that ``me`` owns, in their order."""
        if self.members == [me]:
            return list(metrics)
        return [m for m, o in zip(metrics, self.owners(metrics), strict=True) if o == me]
