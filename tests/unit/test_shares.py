"""Rendezvous assignment (skyline/runtime/shares.py) and a small run of the shard
simulation (utils/bench/shards.py): balance and movement, not time."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from skyline.runtime.shares import Shares, name_hash, name_hashes, owner_index

NAME_HASH_ABC = 7571427850424265304
BENCH = Path(__file__).resolve().parents[2] / "utils" / "bench" / "shards.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_shards", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_shards"] = module
    spec.loader.exec_module(module)
    return module


MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix_py(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def name_hash_py(name: str) -> int:
    """The slow, obviously correct twin of the vectorised name hash."""
    data = name.encode()
    h = mix_py((len(data) + GOLDEN) & MASK)
    data += b"\0" * (-len(data) % 8)
    for i in range(0, len(data), 8):
        h = mix_py(((h ^ int.from_bytes(data[i : i + 8], "little")) + GOLDEN) & MASK)
    return h


def test_name_hashes_equal_the_reference_twin() -> None:
    names = ["", "a", "a\0", "abcdefgh", "abcdefghi", "web.latency", "ünï.cødé.☃",
             "x" * 300, *(f"dc1.host-{i}.cpu.{i * 7}" for i in range(200))]  # fmt: skip
    got = name_hashes(names).tolist()
    assert got == [name_hash_py(n) for n in names]
    assert name_hash("web.latency") == name_hash_py("web.latency")
    assert len(set(got)) == len(names), "no collisions, padding and length included"
    # a fixed value: the hash must never change between versions or machines
    assert name_hash("a.b.c") == name_hash_py("a.b.c") == NAME_HASH_ABC


def test_owner_is_the_highest_score_reference_twin() -> None:
    """owner_index against a slow pure-Python twin of the same rule."""
    metrics = [f"m.{i}" for i in range(300)]
    members = ["a-1-x", "b-2-y", "c-3-z"]
    got = owner_index(name_hashes(metrics), name_hashes(members)).tolist()
    want = [max(range(3), key=lambda j: mix_py(name_hash_py(m) ^ name_hash_py(members[j])))
            for m in metrics]  # fmt: skip
    assert got == want


def test_shares_agree_whatever_the_order_of_the_member_list() -> None:
    metrics = [f"m.{i}" for i in range(2000)]
    a = Shares(["x", "y", "z"]).owners(metrics)
    b = Shares(["z", "x", "y"]).owners(metrics)
    assert a == b
    assert set(a) == {"x", "y", "z"}
    mine = Shares(["x", "y", "z"]).mine("y", metrics)
    assert mine == [m for m, o in zip(metrics, a, strict=True) if o == "y"]


def test_a_leaving_member_moves_only_its_own_metrics() -> None:
    metrics = [f"m.{i}" for i in range(5000)]
    before = Shares(["p", "q", "r", "s"]).owners(metrics)
    after = Shares(["p", "q", "s"]).owners(metrics)
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert moved and all(b == "r" for b, _ in moved)
    assert {a for _, a in moved} == {"p", "q", "s"}


def test_no_members_owns_nothing() -> None:
    assert Shares([]).owners(["a", "b"]) == ["", ""]
    assert Shares([]).mine("x", ["a"]) == []
    assert owner_index(np.zeros(3, dtype=np.uint64), np.zeros(0, dtype=np.uint64)).tolist() == [
        -1,
        -1,
        -1,
    ]


def test_simulation_small_meets_the_targets_for_rendezvous(bench: ModuleType) -> None:
    result = bench.run(60_000, 2, 8, 160, seed=18)
    r = result["methods"]["rendezvous"]
    assert r["meets_targets"], r
    assert r["max_balance"] <= 0.05
    assert r["max_move_excess"] <= 0.02
    steps = r["steps"]
    assert [s["members"] for s in steps][:7] == list(range(2, 9))
    assert steps[-1]["members"] == 2 and len(steps) == 13  # 6 joins, 6 leaves
    for s in steps[1:]:
        assert s["moved"] > 0  # every change moves something, about 1/N
    # jump hash over a sorted list moves far more than 1/N when a member in the
    # middle leaves: the simulation can tell the methods apart
    assert not result["methods"]["jump"]["meets_targets"]
    assert result["methods"]["jump"]["max_move_excess"] > 0.1


def test_simulation_cli_prints_a_table_and_json(bench: ModuleType, capsys) -> None:
    assert bench.main(["--metrics", "20000", "--min", "2", "--max", "4", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = json.loads(out[-1])
    assert head["metrics"] == 20000
    assert head["rendezvous_meets_targets"] is True
    assert {"ring160_max_balance", "jump_max_move_excess", "owners_per_s_4"} <= set(head)
    assert head["owners_per_s_2"] > 0
    assert any(line.startswith("rendezvous") for line in out)


def test_simulation_rejects_bad_bounds(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--min", "5", "--max", "3"])


def test_incremental_rendezvous_equals_a_full_recomputation(bench: ModuleType) -> None:
    hashes = name_hashes(bench.metric_names(20_000, 3))
    tracker = bench.Rendezvous()
    for members in bench.schedule(2, 7, seed=3):
        assert np.array_equal(tracker(hashes, members), bench.rendezvous(hashes, members))
