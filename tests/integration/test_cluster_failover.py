"""A Redis Cluster master killed mid-load (SIGKILL, while horizon ingests and the
analyzer judges): its replica takes over, ingest and analysis resume by themselves
(no daemon dies, nothing is restarted), and what was lost is bounded: at most the
writes the dead master had acknowledged and not yet replicated (asynchronous
replication).  docs/scaling.md ("Failover") has the figures over many runs
(utils/bench/cluster_failover.py)."""

from __future__ import annotations

from tests.failover import run_failover

METRICS, ROUNDS = 200, 90


def test_master_killed_mid_load_ingest_and_analysis_resume(private_cluster, tmp_path):
    result = run_failover(private_cluster, tmp_path / "var", metrics=METRICS, rounds=ROUNDS)
    assert result.sent == METRICS * ROUNDS
    # the dead master's unreplicated tail only: well under one round of points for each
    # metric it held (a third of them), never a whole stretch of the outage
    assert result.lost <= METRICS, result
    assert result.horizon_retries + result.analyzer_outages > 0, "the failover went unseen"
    assert result.analysed_to_the_end, result  # every metric judged up to its last point
