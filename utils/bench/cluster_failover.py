"""Redis Cluster failover under load: how many acknowledged datapoints are lost.

Each run starts a fresh Redis Cluster of 3 masters and 3 replicas on loopback (Debian's
redis-server and redis-cli; the test suite's launcher, tests/cluster.py), runs horizon
and the analyzer on it in this process, feeds ``--metrics`` metrics one point each per
round through horizon's line protocol, SIGKILLs the master holding the analyzer's
changed set a third of the way in, and keeps feeding while the replica takes over
(tests/failover.py).  A run counts the points that never reached the store (the dead
master had acknowledged them but not yet replicated them: asynchronous replication),
the duplicates (a batch resent after its reply was lost; readers drop them), the time
until the replica served the slot, and whether the analyzer judged every metric to
its last point without being restarted.

    python utils/bench/cluster_failover.py [--runs 10] [--metrics 200] [--rounds 150] [--json]

The last line with --json is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the cluster launcher and the scenario live in tests/
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from tests.cluster import RedisClusterNodes  # noqa: E402
from tests.failover import run_failover  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="skyline-failover-") as tmp:
            cluster = RedisClusterNodes(Path(tmp) / "cluster")
            cluster.start()
            try:
                r = run_failover(cluster, Path(tmp) / "var", args.metrics, args.rounds)
            finally:
                cluster.stop()
        results.append(r)
        print(f"run {run + 1}: {json.dumps(asdict(r))}", flush=True)
    lost = [r.lost for r in results]
    summary = {
        "runs": args.runs,
        "points_per_run": args.metrics * args.rounds,
        "lost_total": sum(lost),
        "lost_max": max(lost),
        "lost_per_run": lost,
        "runs_losing": sum(1 for n in lost if n),
        "duplicates_max": max(r.duplicates for r in results),
        "takeover_s_max": round(max(r.takeover_s for r in results), 2),
        "analysed_to_the_end": all(r.analysed_to_the_end for r in results),
    }
    print(json.dumps(summary) if args.json else summary)


if __name__ == "__main__":
    main()
