"""The exception policy of a daemon's worker threads (skyline.runtime.threads): a bug is
counted every time, logged with its traceback at most once per ``log_every`` seconds
(then with the number not logged), and paused after for longer each time until a step
succeeds.  The threads that use it are tested where they live (horizon's writers, the
alerter's channel workers, flux's StatsD listener); flux's counter pusher here."""

from __future__ import annotations

import logging

from skyline.ingest.flux.server import WORKER_COUNTERS, CounterPusher, take_worker_counters
from skyline.runtime.daemon import Counters
from skyline.runtime.threads import ThreadPolicy
from skyline.store.keys import RedisKeys

log = logging.getLogger("test.threads")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(policy: ThreadPolicy, what: str) -> float:
    try:
        raise ValueError(what)
    except ValueError:
        return policy.bug(what)


def test_bugs_are_counted_always_logged_rarely_and_paused_after_longer(caplog):
    clock, counters = Clock(), Counters()
    policy = ThreadPolicy("worker-1", log, counters, backoff_max=2.0, log_every=60, clock=clock)
    with caplog.at_level(logging.ERROR, "test.threads"):
        pauses = [fail(policy, f"step {i}") for i in range(4)]
        clock.now += 59
        fail(policy, "step 4")
        clock.now += 1
        fail(policy, "step 5")
    assert pauses == [0.5, 1.0, 2.0, 2.0]
    assert counters.peek()["errors"] == 6
    logged = [r for r in caplog.records if r.name == "test.threads"]
    assert [r.exc_info[1].args[0] for r in logged] == ["step 0", "step 5"]  # tracebacks
    assert "worker-1: step 0 failed" in logged[0].getMessage()
    assert "(4 more since the last one logged)" in logged[1].getMessage()
    policy.ok()
    assert fail(policy, "step 6") == 0.5


def test_a_policy_without_counters_still_logs(caplog):
    policy = ThreadPolicy("worker-2", log, None)
    with caplog.at_level(logging.ERROR, "test.threads"):
        assert fail(policy, "alone") == 0.5
    assert "worker-2: alone failed" in caplog.text


def test_counter_pusher_keeps_counts_a_foreign_key_refuses(redis_client, caplog):
    """The shared hash's key holds a string (something else wrote it): HINCRBYFLOAT
    answers WRONGTYPE, not an outage.  The pusher thread used to end on it; now the
    counts are kept, the bug counted and logged, and the next push after the key is
    gone delivers them all."""
    keys, counters = RedisKeys("sky:"), Counters()
    pusher = CounterPusher(redis_client, keys, counters)
    redis_client.set(keys.counters(WORKER_COUNTERS), "not a hash")
    counters.inc("accepted", 3)
    pusher.push()
    counters.inc("accepted", 2)
    assert counters.peek() == {"accepted": 5, "errors": 1}
    assert "pushing 1 of this worker's counters failed" in caplog.text
    redis_client.delete(keys.counters(WORKER_COUNTERS))
    pusher.push()
    assert take_worker_counters(redis_client, keys) == {"accepted": 5.0, "errors": 1.0}
    assert counters.peek() == {}


def test_counter_pusher_keeps_only_the_counts_redis_refused(redis_client):
    """One field of the shared hash holds no number: HINCRBYFLOAT refuses that field
    alone, the others are added.  Only the refused count is kept for the next push (all
    of them were, and the others were counted again at every push)."""
    keys, counters = RedisKeys("sky:"), Counters()
    pusher = CounterPusher(redis_client, keys, counters)
    redis_client.hset(keys.counters(WORKER_COUNTERS), "bad", "not a number")
    counters.inc("good", 1)
    counters.inc("bad", 1)
    for _ in range(3):
        pusher.push()
    assert counters.peek() == {"bad": 1, "errors": 1}  # the last push's refusal
    stored = redis_client.hgetall(keys.counters(WORKER_COUNTERS))
    assert float(stored[b"good"]) == 1.0 and float(stored[b"errors"]) == 2.0
