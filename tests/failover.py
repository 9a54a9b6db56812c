"""A Redis Cluster master killed under load, with horizon and the analyzer running.

``run_failover`` feeds ``metrics`` metrics one point each per round through horizon's
line protocol, kills (SIGKILL) the master that holds the analyzer's changed set (and
a third of the series) a third of the way in, keeps feeding while the replica takes
over and after, then waits for horizon to write everything it holds and for the
analyzer to judge every metric's last point.  It returns what reached the store:
points sent, points stored, points lost (sent and acknowledged by the old master but
not yet replicated when it died: Redis replication is asynchronous), and the daemons'
outage counters.  Used by tests/integration/test_cluster_failover.py and
utils/bench/cluster_failover.py (which repeats it and reports the distribution).
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from skyline.analysis.algorithms.state import last_learned
from skyline.analysis.analyzer.agent import Analyzer
from skyline.settings import load_settings
from tests.cluster import RedisClusterNodes
from tests.conftest import wait_for
from tests.integration.horizon_fixtures import horizon_env, running_horizon
from tests.integration.pipeline_fixtures import running

STEP = 60


@dataclass
class FailoverResult:
    sent: int
    stored: int
    lost: int
    metrics_losing: int  # metrics that lost at least one point
    duplicates: int  # records stored twice (a resend after a lost reply); readers drop them
    takeover_s: float  # kill -> the replica serves the slot, cluster ok
    horizon_retries: float
    analyzer_outages: float
    analysed_to_the_end: bool


class Feeder(threading.Thread):
    """Sends one point of every metric per round on one line-protocol connection."""

    def __init__(self, port: int, names: list[str], start: int, rounds: int, pause: float):
        super().__init__(daemon=True)
        self.port, self.names, self.start_ts, self.rounds, self.pause = (
            port, names, start, rounds, pause,
        )  # fmt: skip
        self.round = 0

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as feed:
            for k in range(self.rounds):
                ts = self.start_ts + k * STEP
                feed.sendall("".join(f"{n} {k % 7}.5 {ts}\n" for n in self.names).encode())
                self.round = k + 1
                time.sleep(self.pause)


def run_failover(cluster: RedisClusterNodes, var_dir: Path, metrics: int = 200,
                 rounds: int = 150, pause: float = 0.02) -> FailoverResult:  # fmt: skip
    env = {
        "SKYLINE__SKYLINE__VAR_DIR": str(var_dir),
        "SKYLINE__REDIS__URL": cluster.url,
        "SKYLINE__REDIS__SOCKET_TIMEOUT": "2",
        "SKYLINE__ANALYZER__ARRIVAL_INTERVAL": "0.05",
        "SKYLINE__ANALYZER__INTERVAL": "3600",
        **horizon_env(SKYLINE__HORIZON__MAX_AGE="864000"),
    }
    settings = load_settings(env=env)
    names = [f"fo.m{i}" for i in range(metrics)]
    start = (int(time.time()) // STEP) * STEP - rounds * STEP
    with ExitStack() as stack:
        horizon = stack.enter_context(running_horizon(settings))
        analyzer = stack.enter_context(running(Analyzer(settings), ready="options"))
        victim = cluster.master_of(analyzer.keys.changed())
        feeder = Feeder(horizon.listeners.ports["line_port"], names, start, rounds, pause)
        feeder.start()
        wait_for(lambda: feeder.round >= rounds // 3, timeout=120)
        t0 = time.monotonic()
        cluster.kill(victim)  # while the feeder keeps sending
        cluster.wait_failover(victim, analyzer.keys.changed())
        takeover = time.monotonic() - t0
        feeder.join(120)
        assert feeder.round == rounds, "the feeder did not finish"
        last = start + (rounds - 1) * STEP
        wait_for(lambda: horizon.buffer.pending == 0 and horizon.buffer.empty(), timeout=60)
        state = analyzer.keys.detector_state

        def judged_up_to(name: str) -> float | None:
            """The last point judged: the analyzer's cached state (checkpoints save it
            to Redis only now and then), else the state saved in Redis."""
            cached = analyzer.detect.cache.get(name) if analyzer.detect else None
            if cached is not None:
                row = cached[1][None, :]
                return float(analyzer.detect.detector.layout.view(row, "last_ts")[0])
            return last_learned(analyzer.redis.get(state(name)) or b"")

        def judged_to_the_end() -> bool:
            return all(judged_up_to(n) == last for n in names)

        try:
            wait_for(judged_to_the_end, timeout=60, interval=0.2)
            analysed = True
        except AssertionError:
            analysed = False
        stored = duplicates = losing = 0
        series = analyzer.store.read_many(names)
        raws = analyzer.store.read_raw_many(names)
        for n, raw in zip(names, raws, strict=True):
            kept = int(((series[n].timestamps >= start) & (series[n].timestamps <= last)).sum())
            stored += kept
            losing += kept < rounds
            duplicates += len(raw or b"") // 12 - len(series[n])
        return FailoverResult(
            sent=metrics * rounds, stored=stored, lost=metrics * rounds - stored,
            metrics_losing=losing, duplicates=max(duplicates, 0), takeover_s=takeover,
            horizon_retries=horizon.counters.peek().get("write_retries", 0),
            analyzer_outages=analyzer.counters.peek().get("outages", 0),
            analysed_to_the_end=analysed,
        )  # fmt: skip
