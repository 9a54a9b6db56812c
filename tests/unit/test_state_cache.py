"""StateCache (rows in one slab, by slot) against a plain dict model of it."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from skyline.analysis.analyzer.state_cache import StateCache

WIDTH = 5
HEAD = 24


class DictCache:
    """The slow twin: one dict entry per metric, insertion order = saved order."""

    def __init__(self, limit: int, checkpoint: float) -> None:
        self.limit, self.checkpoint = limit, checkpoint
        self.rows: dict[str, dict] = {}

    def entry_size(self, key: bytes) -> int:
        check = b"*4\r\n$8\r\nGETRANGE\r\n$%d\r\n%b\r\n$1\r\n0\r\n$2\r\n23\r\n" % (len(key), key)
        return HEAD + len(check) + 8 * WIDTH

    def size(self) -> int:
        return sum(e["size"] for e in self.rows.values())

    def put(self, metrics, keys, headers, rows, now):
        if self.limit <= 0:
            return []
        for m, k, h, r in zip(metrics, keys, headers, rows, strict=True):
            self.rows.pop(m, None)
            spread = 0.5 + (zlib.crc32(m.encode()) % 1000) / 2000.0
            self.rows[m] = {"head": h, "row": r.copy(), "due": now + self.checkpoint * spread,
                            "dirty": False, "size": self.entry_size(k)}  # fmt: skip
        evicted = []
        while self.size() > self.limit and self.rows:
            m = next(iter(self.rows))
            e = self.rows.pop(m)
            if e["dirty"]:
                evicted.append((m, e["row"]))
        return evicted

    def defer(self, metrics, state, moved, now):
        keep = []
        for m, row, mv in zip(metrics, state, moved, strict=True):
            e = self.rows.get(m)
            k = bool(mv and e is not None and self.checkpoint > 0 and now < e["due"])
            if k:
                e["row"], e["dirty"] = row.copy(), True
            keep.append(k)
        return np.array(keep)


def key(m: str) -> bytes:
    return b"state:" + m.encode()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit_rows", [0, 3, 40])
def test_state_cache_equals_a_dict_of_entries(seed, limit_rows):
    """Random puts (with evictions), defers, drops: the same rows, dirty states,
    evictions and saved order as the dict model."""
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(12)]
    model = DictCache(0, 60.0)
    per = model.entry_size(key("m10"))
    limit = limit_rows * per
    model.limit = limit
    cache = StateCache(limit, WIDTH, 60.0)
    now = 0.0
    for _ in range(300):
        now += float(rng.integers(0, 40))
        action = rng.random()
        chosen = list(rng.choice(names, size=int(rng.integers(1, 6)), replace=False))
        rows = rng.normal(size=(len(chosen), WIDTH))
        if action < 0.4:
            heads = [bytes(rng.integers(0, 256, HEAD, dtype=np.uint8)) for _ in chosen]
            keys = [key(m) for m in chosen]
            got = cache.put(chosen, keys, heads, rows, now)
            want = model.put(chosen, keys, heads, rows, now)
            assert [m for m, _ in got] == [m for m, _ in want]
            for (_, a), (_, b) in zip(got, want, strict=True):
                assert np.array_equal(a, b)
        elif action < 0.8:
            moved = rng.random(len(chosen)) < 0.8
            slots = cache.slots(chosen)
            assert ((slots >= 0) == [m in model.rows for m in chosen]).all()
            own = cache.rows_in_place(slots) if action < 0.6 else None
            if own is None:
                got = cache.defer(slots, rows, moved, now)
            else:  # stepped in place: the moved rows change in the cache itself
                assert np.array_equal(own, cache.rows(slots))
                own[moved] = rows[moved]
                got = cache.defer(slots, rows, moved, now, in_place=True)
            want = model.defer(chosen, rows, moved, now)
            assert got.tolist() == want.tolist()
            if own is not None:  # what the pass does next: save the moved rows not kept
                due = [i for i in range(len(chosen)) if moved[i] and not got[i]]
                heads = [bytes(rng.integers(0, 256, HEAD, dtype=np.uint8)) for _ in due]
                args = ([chosen[i] for i in due], [key(chosen[i]) for i in due], heads, rows[due])
                got_ev, want_ev = cache.put(*args, now), model.put(*args, now)
                assert [m for m, _ in got_ev] == [m for m, _ in want_ev]
        else:
            for m in chosen:
                cache.drop(m)
                model.rows.pop(m, None)
        assert len(cache) == len(model.rows) and cache.size == model.size()
        for m, e in model.rows.items():
            head, row, check = cache.get(m)
            assert head == e["head"] and np.array_equal(row, e["row"])
            assert check == b"*4\r\n$8\r\nGETRANGE\r\n$%d\r\n%b\r\n$1\r\n0\r\n$2\r\n23\r\n" % (
                len(key(m)),
                key(m),
            )
        want_dirty = [(m, e["row"]) for m, e in model.rows.items() if e["dirty"]]
        got_dirty = cache.dirty()
        assert [m for m, _ in got_dirty] == [m for m, _ in want_dirty]
        assert all(
            np.array_equal(a, b) for (_, a), (_, b) in zip(got_dirty, want_dirty, strict=True)
        )


def test_rows_in_place_only_for_one_ascending_run_of_slots():
    cache = StateCache(1 << 20, WIDTH, 60.0)
    names = [f"m{i}" for i in range(6)]
    cache.put(names, [key(m) for m in names], [b"h" * HEAD] * 6,
              np.arange(6 * WIDTH, dtype=float).reshape(6, WIDTH), 0.0)  # fmt: skip
    run = cache.slots(names[1:4])
    own = cache.rows_in_place(run)
    assert own is not None and np.array_equal(own, cache.rows(run))
    own[0, 0] = -1.0  # the cache's own row
    assert cache.get("m1")[1][0] == -1.0  # type: ignore[index]
    for names_ in (["m1", "m3"], ["m2", "m1"], ["m1", "nope"], ["m0", "m1", "m1"]):
        assert cache.rows_in_place(cache.slots(names_)) is None, names_
    assert cache.rows_in_place(cache.slots([])) is None


def test_a_cached_row_is_a_copy():
    cache = StateCache(1 << 20, WIDTH, 0.0)
    row = np.ones((1, WIDTH))
    cache.put(["a"], [key("a")], [b"h" * HEAD], row, 0.0)
    row[0, 0] = 9.0
    got = cache.rows(cache.slots(["a"]))
    got[0, 1] = 7.0
    assert cache.get("a")[1].tolist() == [1.0] * WIDTH  # type: ignore[index]
    assert cache.slots(["a", "b"])[1] == -1


@pytest.mark.parametrize("limit_entries, chunk", [(300, 1000), (1000, 1000), (2000, 1000)])
def test_the_slab_stays_within_the_limit(limit_entries, chunk):
    """``limit`` bounds the bytes held: the slab must not grow to hold rows the limit
    never lets the cache keep (a chunk of new states is evicted down to the limit;
    the slab should not keep room for the whole chunk, nor double past the limit)."""
    width = 954  # the default detector's row (7,632 bytes)
    k = key("m0")
    entry = HEAD + len(b"*4\r\n$8\r\nGETRANGE\r\n$%d\r\n%b\r\n$1\r\n0\r\n$2\r\n23\r\n"
                       % (len(k), k)) + 8 * width  # fmt: skip
    cache = StateCache(limit_entries * entry + entry // 2, width)
    n = 0
    for _ in range(5):  # passes over new metrics, a STATE_CHUNK at a time
        names = [f"m{n + i}" for i in range(chunk)]
        n += chunk
        cache.put(names, [key(m) for m in names], [b"h" * HEAD] * chunk,
                  np.zeros((chunk, width)), 0.0)  # fmt: skip
    assert limit_entries - 5 <= len(cache) <= limit_entries + 5
    assert cache._rows.nbytes <= cache.limit * 1.1, (cache._rows.shape, cache.limit)
