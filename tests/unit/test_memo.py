"""``skyline.store.memo.Memo``: made once per metric, bounded, ``many`` = a loop of calls."""

from __future__ import annotations

from skyline.store.memo import Memo


def test_made_once_per_metric_and_bounded():
    made: list[str] = []

    def make(m: str) -> bytes:
        made.append(m)
        return m.encode() * 2

    memo = Memo(make, limit=3)
    assert memo("a") == b"aa" and memo("a") == b"aa" and made == ["a"]
    assert memo.many(["b", "a", "c", "b"]) == [b"bb", b"aa", b"cc", b"bb"]
    assert made == ["a", "b", "c"]
    assert memo("d") == b"dd"  # past the limit: starts over
    assert memo.many(["a", "d"]) == [b"aa", b"dd"] and made == ["a", "b", "c", "d", "a"]
    assert memo.many([]) == []
