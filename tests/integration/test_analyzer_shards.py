"""Several analyzers on one real Redis share the metrics (skyline/analysis/analyzer/
sharding.py), driven pass by pass on an injected clock: disjoint sweeps, arrivals
routed to their owner, a dead member's metrics and pending arrivals taken over in
one pass after its lease, a clean stop that hands its pending names back."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from skyline.analysis.algorithms.state import last_learned
from skyline.analysis.analyzer.agent import Analyzer
from skyline.runtime.shares import Shares

N_METRICS = 40
T0 = 1_700_000_000
STEP = 60
LEASE = 10.0


class Clock:
    def __init__(self) -> None:
        self.t = float(T0 + 200 * STEP)

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_analyzer(make_settings, clock):
    env = {
        "SKYLINE__ANALYZER__INTERVAL": "3600",
        "SKYLINE__ANALYZER__MODE": "default",
        "SKYLINE__ANALYZER__ARRIVAL_INTERVAL": "0.05",
        "SKYLINE__SKYLINE__MEMBER_LEASE": str(LEASE),
        "SKYLINE__ANALYZER__STATE_CHECKPOINT": "0",
    }  # states in Redis every pass: observable
    settings = make_settings(**env)

    def make(checkpoint: str = "0") -> Analyzer:
        daemon = Analyzer(settings if checkpoint == "0" else make_settings(
            **{**env, "SKYLINE__ANALYZER__STATE_CHECKPOINT": checkpoint}), clock=clock)  # fmt: skip
        daemon.setup()
        daemon.renew_membership()
        return daemon

    return make


NAMES = [f"shard.test.{i}" for i in range(N_METRICS)]


def write(daemon: Analyzer, upto: int, changed: bool) -> int:
    """Points up to index ``upto`` (exclusive) for every metric; the last timestamp."""
    rng = np.random.default_rng(upto)
    ts = [T0 + STEP * i for i in range(upto - (1 if changed else upto), upto)]
    daemon.store.append_grouped(
        {m: (ts, (100 + rng.normal(0, 1, len(ts))).tolist()) for m in NAMES}, changed=changed
    )
    return ts[-1]


def judged(daemon: Analyzer) -> dict[str, float | None]:
    """The last timestamp the detector judged, per metric (None: never analysed)."""
    blobs = daemon.redis.mget([daemon.keys.detector_state(m) for m in NAMES])
    return {m: last_learned(cast(bytes | None, b)) for m, b in zip(NAMES, blobs, strict=True)}


def owned(daemon: Analyzer) -> set[str]:
    return set(daemon.sharding.mine(NAMES))


def test_two_analyzers_sweep_disjoint_halves(make_analyzer) -> None:
    a, b = make_analyzer(), make_analyzer()
    last = write(a, 200, changed=False)
    a._one_pass()
    b._one_pass()
    mine_a, mine_b = owned(a), owned(b)
    assert mine_a and mine_b and not mine_a & mine_b and mine_a | mine_b == set(NAMES)
    assert a.counters.peek()["total_analyzed"] == len(mine_a)
    assert b.counters.peek()["total_analyzed"] == len(mine_b)
    assert set(judged(a).values()) == {float(last)}
    assert a.share_info == {"members": 2, "metrics": len(mine_a), "total": N_METRICS,
                            "share": round(len(mine_a) / N_METRICS, 4)}  # fmt: skip
    members = {m.id: m.info for m in a.membership.look()[0]}
    assert members[b.membership.id]["metrics"] == len(mine_b)


def test_arrivals_go_to_their_owner(make_analyzer) -> None:
    a, b = make_analyzer(), make_analyzer()
    write(a, 200, changed=False)
    a._one_pass()
    b._one_pass()
    last = write(a, 201, changed=True)
    a._one_pass()  # pops every name: analyses its own, routes b's to b
    after_a = judged(a)
    assert {m for m, t in after_a.items() if t == last} == owned(a)
    routed = {x.decode() for x in a.redis.smembers(a.keys.member_changed(b.membership.id))}
    assert routed == owned(b)
    assert a.counters.peek()["shard.routed"] == len(owned(b))
    b._one_pass()
    assert set(judged(a).values()) == {float(last)}
    assert not a.redis.exists(a.keys.member_changed(b.membership.id))


def test_a_killed_analyzers_share_is_taken_over_in_one_pass_after_its_lease(
    make_analyzer, clock
) -> None:
    a, b = make_analyzer(), make_analyzer()
    write(a, 200, changed=False)
    a._one_pass()
    b._one_pass()
    # a is killed (no more passes, no leave); new data keeps arriving
    last = write(a, 201, changed=True)
    lost = [x.decode() for x in a.redis.spop(a.keys.changed(), 3)]  # a popped these, then died
    b._one_pass()  # a's lease still runs: b routes a's arrivals to a's own set
    waiting = {x.decode() for x in b.redis.smembers(b.keys.member_changed(a.membership.id))}
    assert waiting == owned(a) - set(lost)
    assert {m for m, t in judged(b).items() if t == last} == owned(b) - set(lost)
    clock.t += LEASE + 1  # a's lease runs out
    b._one_pass()  # one pass: b owns everything, recovers a's set, sweeps what it gained
    assert owned(b) == set(NAMES)
    assert set(judged(b).values()) == {float(last)}, "every metric analysed, the lost ones too"
    c = b.counters.peek()
    assert c["shard.acquired"] == N_METRICS - len(owned_before(b, a))
    assert c["shard.recovered"] == len(waiting)
    assert not b.redis.exists(b.keys.member_changed(a.membership.id))


def owned_before(b: Analyzer, a: Analyzer) -> set[str]:
    """b's metrics while a was live."""
    return set(Shares([a.membership.id, b.membership.id]).mine(b.membership.id, NAMES))


def test_a_clean_stop_leaves_and_hands_pending_names_back(make_analyzer) -> None:
    a, b = make_analyzer(), make_analyzer()
    write(a, 200, changed=False)
    a._one_pass()
    b._one_pass()
    last = write(a, 201, changed=True)
    b._one_pass()  # routes a's names to a's set
    assert b.redis.scard(b.keys.member_changed(a.membership.id)) == len(owned(a))
    a.leave()  # SIGTERM: leave, hand back
    assert not a.redis.exists(a.keys.member_changed(a.membership.id))
    assert [m.id for m in b.membership.look()[0]] == [b.membership.id]
    b._one_pass()
    assert owned(b) == set(NAMES)
    assert set(judged(b).values()) == {float(last)}


def test_a_lone_analyzer_owns_everything_from_its_first_pass(make_analyzer) -> None:
    a = make_analyzer()
    last = write(a, 200, changed=False)
    a.redis.delete(a.keys.members("analyzer"))  # its own record not visible yet
    a._one_pass()
    assert owned(a) == set(NAMES)
    assert set(judged(a).values()) == {float(last)}
    assert a.counters.peek().get("shard.routed", 0) == 0


def test_a_joining_analyzer_gets_the_states_learned_since_the_checkpoint(make_analyzer) -> None:
    """With checkpoints, states run ahead of Redis in the owner's cache: the metrics it
    loses to a newcomer are written back first, so the newcomer continues from them."""
    a = make_analyzer("300")
    write(a, 200, changed=False)
    a._one_pass()  # alone: every state built
    last = write(a, 201, changed=True)
    a._one_pass()  # judged, held in the cache (the checkpoint is not due)
    assert set(judged(a).values()) != {float(last)}, "Redis still has the older states"
    b = make_analyzer()
    a._one_pass()  # sees b: hands over b's metrics
    handed = {m for m, t in judged(a).items() if t == last}
    bs = set(Shares([a.membership.id, b.membership.id]).mine(b.membership.id, NAMES))
    assert bs and handed == bs
    assert a.counters.peek()["shard.states_handed_over"] == len(bs)
    assert not any(a.detect.cache.get(m) for m in bs)  # type: ignore[union-attr]
