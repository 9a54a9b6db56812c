#!/usr/bin/env python
"""Shard assignment simulation: how evenly metrics spread over analyzers, and how
many move when one analyzer joins or leaves.

``--metrics`` synthetic metric names (seeded) are assigned to members named like
live analyzers (``host-pid-token``).  Members join one at a time from ``--min`` to
``--max``, then random members (seeded) leave one at a time back down to ``--min``.
After every change, for each method:

* balance: the largest ``|count / (metrics / N) - 1|`` over the members;
* movement: the fraction of all metrics whose owner changed, against the ideal
  ``1/N`` (N = the member count on the larger side of the change) -- the excess is
  ``moved - 1/N``.

Methods: ``rendezvous`` (what Skyline runs: ``skyline.runtime.shares``), a
consistent-hash ``ring`` with ``--vnodes`` virtual nodes per member, and ``jump``
hash (Lamping & Veach) over the sorted member list.  The targets (issue 18):
balance within +-5 %, movement <= 1/N + 2 %.

    python utils/bench/shards.py [--metrics 1000000] [--min 2] [--max 50]
                                 [--vnodes 160] [--seed 18] [--json]

The last line with ``--json`` is one JSON object: per method its worst balance and
worst excess movement, and whether it meets both targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from skyline.runtime.shares import Shares, mix, name_hash, name_hashes, owner_index  # noqa: E402

BALANCE_TARGET = 0.05
MOVE_EXCESS_TARGET = 0.02

Assign = Callable[[np.ndarray, Sequence[str]], np.ndarray]


def metric_names(n: int, seed: int) -> list[str]:
    """``n`` distinct names shaped like Graphite metrics (datacentre, host, subsystem)."""
    rng = np.random.default_rng(seed)
    parts = ["cpu.user", "cpu.system", "memory.used", "disk.sda.reads", "net.eth0.rx_bytes",
             "nginx.requests", "app.latency.p99", "jvm.gc.pause", "queue.depth"]  # fmt: skip
    hosts = rng.integers(0, 10**9, size=n)
    return [f"dc{i % 7}.host-{hosts[i]:09d}.{parts[i % len(parts)]}.{i}" for i in range(n)]


def rendezvous(metric_hashes: np.ndarray, members: Sequence[str]) -> np.ndarray:
    """Skyline's assignment: owner positions in ``sorted(members)``."""
    return owner_index(metric_hashes, name_hashes(sorted(members)))


class Rendezvous:
    """``rendezvous`` kept up to date change by change: a join scores the newcomer
    once against the best score so far, a leave re-scores only the leaver's metrics
    (the same owners as a full recomputation; tests/unit/test_shares.py checks)."""

    def __init__(self) -> None:
        self.members: list[str] = []
        self.codes: dict[str, int] = {}  # member -> code in ``owner``
        self.best = np.zeros(0, dtype=np.uint64)
        self.owner = np.zeros(0, dtype=np.int64)

    def _code(self, member: str) -> int:
        return self.codes.setdefault(member, len(self.codes))

    def __call__(self, metric_hashes: np.ndarray, members: Sequence[str]) -> np.ndarray:
        new = sorted(members)
        if not self.members or len(self.owner) != len(metric_hashes):
            self.members = []
            self.best = np.zeros(len(metric_hashes), dtype=np.uint64)
            self.owner = np.full(len(metric_hashes), -1, dtype=np.int64)
        for m in sorted(set(new) - set(self.members)):
            score = mix(metric_hashes ^ np.uint64(name_hash(m)))
            better = score > self.best
            self.best[better], self.owner[better] = score[better], self._code(m)
        for m in sorted(set(self.members) - set(new)):
            idx = np.flatnonzero(self.owner == self.codes[m])
            pos = rendezvous(metric_hashes[idx], new)
            self.owner[idx] = np.array([self._code(x) for x in new])[pos]
            hashes = name_hashes(new)[pos]
            self.best[idx] = mix(metric_hashes[idx] ^ hashes)
        self.members = new
        to_pos = np.full(len(self.codes), -1, dtype=np.int64)
        to_pos[[self.codes[m] for m in new]] = np.arange(len(new))
        return to_pos[self.owner]


def ring(vnodes: int) -> Assign:
    """A consistent-hash ring: ``vnodes`` points per member; a metric belongs to the
    first point at or after its hash."""

    def assign(metric_hashes: np.ndarray, members: Sequence[str]) -> np.ndarray:
        ordered = sorted(members)
        points = name_hashes(f"{m}#{v}" for m in ordered for v in range(vnodes))
        owners = np.repeat(np.arange(len(ordered)), vnodes)
        order = np.argsort(points)
        points, owners = points[order], owners[order]
        pos = np.searchsorted(points, metric_hashes) % len(points)
        return owners[pos]

    return assign


def jump(metric_hashes: np.ndarray, members: Sequence[str]) -> np.ndarray:
    """Jump consistent hash into ``len(members)`` buckets (the sorted members)."""
    n = len(members)
    key = metric_hashes.copy()
    b = np.full(len(key), -1, dtype=np.int64)
    j = np.zeros(len(key), dtype=np.int64)
    live = np.ones(len(key), dtype=bool)
    with np.errstate(over="ignore"):
        while live.any():
            b[live] = j[live]
            key[live] = key[live] * np.uint64(2862933555777941757) + np.uint64(1)
            frac = ((key[live] >> np.uint64(33)) + np.uint64(1)).astype(np.float64)
            j[live] = ((b[live] + 1) * (float(1 << 31) / frac)).astype(np.int64)
            live &= j < n
    return b


def methods(vnodes: int) -> dict[str, Assign]:
    return {"rendezvous": Rendezvous(), f"ring{vnodes}": ring(vnodes), "jump": jump}


def schedule(lo: int, hi: int, seed: int) -> list[list[str]]:
    """Member lists: joins from ``lo`` to ``hi`` members, then random leaves to ``lo``."""
    rng = np.random.default_rng(seed + 1)
    ids = [f"analyzer-{i:02d}-{rng.integers(1 << 30):08x}" for i in range(hi)]
    states = [ids[:n] for n in range(lo, hi + 1)]
    current = list(ids)
    while len(current) > lo:
        del current[int(rng.integers(len(current)))]
        states.append(list(current))
    return states


@dataclass
class Step:
    members: int
    change: str  # join | leave | start
    balance: float  # largest |count / ideal - 1|
    moved: float  # fraction of all metrics that changed owner
    ideal: float  # 1 / N on the larger side of the change


def simulate(assign: Assign, metric_hashes: np.ndarray, states: list[list[str]]) -> list[Step]:
    steps: list[Step] = []
    prev: np.ndarray | None = None
    prev_n = 0
    m = len(metric_hashes)
    codes: dict[str, int] = {}  # member -> a code that stays the same across states
    for members in states:
        ordered = sorted(members)
        code = np.array([codes.setdefault(x, len(codes)) for x in ordered], dtype=np.int64)
        owner = code[assign(metric_hashes, ordered)]
        counts = np.bincount(owner, minlength=len(codes))[code]
        balance = float(np.abs(counts / (m / len(ordered)) - 1).max())
        if prev is None:
            steps.append(Step(len(ordered), "start", balance, 0.0, 0.0))
        else:
            change = "join" if len(ordered) > prev_n else "leave"
            n = max(len(ordered), prev_n)
            steps.append(Step(len(ordered), change, balance, float((owner != prev).mean()), 1 / n))
        prev, prev_n = owner, len(ordered)
    return steps


def summary(steps: list[Step]) -> dict[str, float | bool]:
    balance = max(s.balance for s in steps)
    excess = max((s.moved - s.ideal for s in steps if s.change != "start"), default=0.0)
    return {
        "max_balance": round(balance, 5),
        "max_move_excess": round(excess, 5),
        "meets_targets": balance <= BALANCE_TARGET and excess <= MOVE_EXCESS_TARGET,
    }


def lookup_rate(names: Sequence[str], members: int, reps: int = 3) -> float:
    """Names per second through ``Shares.owners`` (hash + score: what an analyzer
    pays per popped name to route it) with ``members`` members; best of ``reps``."""
    shares = Shares([f"analyzer-{i:02d}" for i in range(members)])
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        shares.owners(names)
        best = min(best, time.perf_counter() - t0)
    return len(names) / best


def run(n_metrics: int, lo: int, hi: int, vnodes: int, seed: int) -> dict[str, object]:
    t0 = time.perf_counter()
    hashes = name_hashes(metric_names(n_metrics, seed))
    hash_s = time.perf_counter() - t0
    states = schedule(lo, hi, seed)
    results: dict[str, object] = {}
    for name, assign in methods(vnodes).items():
        t0 = time.perf_counter()
        steps = simulate(assign, hashes, states)
        results[name] = {**summary(steps), "seconds": round(time.perf_counter() - t0, 2),
                         "steps": [asdict(s) for s in steps]}  # fmt: skip
    sample = metric_names(min(n_metrics, 50_000), seed + 2)
    rates = {f"owners_per_s_{n}": round(lookup_rate(sample, n)) for n in (lo, 3, hi)}
    return {"metrics": n_metrics, "min": lo, "max": hi, "changes": len(states) - 1,
            "hash_seconds": round(hash_s, 2), **rates, "methods": results}  # fmt: skip


def table(result: dict[str, object]) -> str:
    methods_ = result["methods"]
    assert isinstance(methods_, dict)
    lines = [f"{result['metrics']:,} metrics, members {result['min']}..{result['max']}..."
             f"{result['min']}, {result['changes']} changes; targets: balance <= "
             f"{BALANCE_TARGET:.0%}, moved <= 1/N + {MOVE_EXCESS_TARGET:.0%}", "",
             "owner lookups (hash + score, names/s): " + ", ".join(
                 f"{k.rsplit('_', 1)[1]} members {v:,}" for k, v in result.items()
                 if k.startswith("owners_per_s_")), "",
             f"{'method':<12} {'max balance':>12} {'max moved-1/N':>14} {'meets':>6} {'s':>7}"]  # fmt: skip
    for name, r in methods_.items():
        lines.append(f"{name:<12} {r['max_balance']:>12.2%} {r['max_move_excess']:>14.2%} "
                     f"{'yes' if r['meets_targets'] else 'no':>6} {r['seconds']:>7.1f}")  # fmt: skip
    lines += ["", "rendezvous per change (N after the change):",
              f"{'N':>4} {'change':<6} {'balance':>8} {'moved':>8} {'1/N':>8}"]  # fmt: skip
    for s in methods_["rendezvous"]["steps"]:
        lines.append(f"{s['members']:>4} {s['change']:<6} {s['balance']:>8.2%} "
                     f"{s['moved']:>8.2%} {s['ideal']:>8.2%}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", type=int, default=1_000_000)
    ap.add_argument("--min", type=int, default=2)
    ap.add_argument("--max", type=int, default=50)
    ap.add_argument("--vnodes", type=int, default=160)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not 1 <= args.min < args.max:
        ap.error("--min must be at least 1 and below --max")
    result = run(args.metrics, args.min, args.max, args.vnodes, args.seed)
    print(table(result))
    if args.json:
        methods_ = result["methods"]
        assert isinstance(methods_, dict)
        head = {f"{name}_{k}": v for name, r in methods_.items() for k, v in r.items()
                if k in ("max_balance", "max_move_excess", "meets_targets")}  # fmt: skip
        rates = {k: v for k, v in result.items() if k.startswith("owners_per_s_")}
        print(json.dumps({"metrics": result["metrics"], **rates, **head}))
    return 0 if result["methods"]["rendezvous"]["meets_targets"] else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
