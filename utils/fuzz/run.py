"""One fuzz run over the chosen protocols against one private Skyline."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime

from utils.fuzz.protocols import PROTOCOLS
from utils.fuzz.stack import Stack

SETTLE = 3.0  # s for horizon's batches and flux's StatsD flush to reach Redis


def run(per_protocol: int, seed: int, protocols: str = "all") -> dict[str, object]:
    chosen = list(PROTOCOLS) if protocols == "all" else protocols.split(",")
    unknown = sorted(set(chosen) - set(PROTOCOLS))
    if unknown:
        raise SystemExit(f"unknown protocol(s) {unknown}; known: {', '.join(PROTOCOLS)}")
    started = time.monotonic()
    results: dict[str, dict[str, object]] = {}
    with Stack() as stack:
        ledgers = {}
        for name in chosen:
            t0 = time.monotonic()
            outcome, ledger = PROTOCOLS[name](stack, per_protocol, seed)
            ledgers[name] = (outcome, ledger)
            results[name] = {"seconds": round(time.monotonic() - t0, 1)}
        time.sleep(SETTLE)
        for name, (outcome, ledger) in ledgers.items():
            lost = ledger.check(stack)
            outcome.good_lost, outcome.lost_examples = len(lost), sorted(set(lost))[:5]
            results[name].update(outcome.as_dict())
        dead = stack.dead()
        peak = {k: round(v / 2**20, 1) for k, v in sorted(stack.peak_rss.items())}
    http_5xx = sum(int(r["http_5xx"]) for r in results.values())  # type: ignore[call-overload]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "per_protocol": per_protocol,
        "seed": seed,
        "inputs": sum(int(r["inputs"]) for r in results.values()),  # type: ignore[call-overload]
        "good_sent": sum(int(r["good_sent"]) for r in results.values()),  # type: ignore[call-overload]
        "good_lost": sum(int(r["good_lost"]) for r in results.values()),  # type: ignore[call-overload]
        "crashes": len(dead) + http_5xx,
        "daemons_died": dead,
        "http_5xx": http_5xx,
        "peak_rss_mb": peak,
        "seconds": round(time.monotonic() - started, 1),
        "protocols": results,
    }
