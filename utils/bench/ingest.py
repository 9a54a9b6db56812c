"""Horizon ingest benchmark: datapoints/s that land in Redis through pickle and line protocol.

Starts a real horizon daemon (``skyline start horizon``) in a scratch directory with
its own Redis (the embedded one by default, as ``make run`` does), then runs load
generators in separate processes, each holding a connection open and sending
pre-built traffic as fast as horizon accepts it (carbon-relay style: pickle frames
of 500 datapoints; plaintext lines).  Throughput is what *lands*: the growth of the
stored series (STRLEN / 12 bytes per record) during a measured window while the
generators run, after a warm-up.  horizon's resident memory is sampled every second
so a leak shows as growth.

    python utils/bench/ingest.py [--seconds 60] [--metrics 10000] [--senders 2] [--json]

The last line with --json is one JSON object of the headline figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parents[2]
FRAME_POINTS = 500  # carbon-relay's MAX_DATAPOINTS_PER_MESSAGE default
ROUNDS = 8  # distinct timestamp rounds pre-built per generator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_pickle_traffic(metrics: int, now: int, offset: int) -> bytes:
    out = bytearray()
    for r in range(ROUNDS):
        ts = now - 600 + r + offset * ROUNDS
        points = [(f"bench.pickle.m{i}", (ts, float(i % 97) + r * 0.5)) for i in range(metrics)]
        for k in range(0, len(points), FRAME_POINTS):
            payload = pickle.dumps(points[k : k + FRAME_POINTS], protocol=2)
            out += struct.pack("!L", len(payload)) + payload
    return bytes(out)


def build_line_traffic(metrics: int, now: int, offset: int) -> bytes:
    lines = []
    for r in range(ROUNDS):
        ts = now - 600 + r + offset * ROUNDS
        lines += [f"bench.line.m{i} {float(i % 97) + r * 0.5} {ts}\n" for i in range(metrics)]
    return "".join(lines).encode()


def sender(port: int, traffic: bytes, stop_at: float, sent: mp.Value) -> None:  # type: ignore[valid-type]
    with socket.create_connection(("127.0.0.1", port)) as s:
        n = 0
        while time.time() < stop_at:
            s.sendall(traffic)
            n += 1
        with sent.get_lock():
            sent.value += n


def stored_points(client: redis.Redis, prefix: str) -> int:
    keys = [k for k in client.scan_iter(match=f"{prefix}ts:bench.*", count=5000)]
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.strlen(k)
    return sum(pipe.execute()) // 12


def run_phase(kind: str, port: int, args, client: redis.Redis, horizon: psutil.Process) -> dict:
    now = int(time.time())
    build = build_pickle_traffic if kind == "pickle" else build_line_traffic
    traffic = [build(args.metrics, now, i) for i in range(args.senders)]
    points_per_send = ROUNDS * args.metrics
    stop_at = time.time() + args.warmup + args.seconds
    sent = mp.Value("q", 0)
    procs = [mp.Process(target=sender, args=(port, t, stop_at, sent)) for t in traffic]
    for p in procs:
        p.start()
    time.sleep(args.warmup)
    start_points, t0 = stored_points(client, "sky:"), time.monotonic()
    rss = []
    while time.time() < stop_at - 0.5:
        rss.append(horizon.memory_info().rss / 2**20)
        time.sleep(1)
    end_points, t1 = stored_points(client, "sky:"), time.monotonic()
    for p in procs:
        p.join(30)
    rate = (end_points - start_points) / (t1 - t0)
    return {
        f"{kind}_datapoints_per_s": round(rate),
        f"{kind}_window_s": round(t1 - t0, 1),
        f"{kind}_sent_datapoints": sent.value * points_per_send,
        f"{kind}_rss_mb_first": round(rss[0], 1) if rss else None,
        f"{kind}_rss_mb_last": round(rss[-1], 1) if rss else None,
        f"{kind}_rss_mb_max": round(max(rss), 1) if rss else None,
    }


def start_horizon(workdir: Path, args) -> tuple[dict[str, int], dict[str, str]]:
    ports = {"LINE_PORT": free_port(), "PICKLE_PORT": free_port(), "UDP_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYLINE")}
    env.update({f"SKYLINE__HORIZON__{k}": str(v) for k, v in ports.items()})
    env["SKYLINE__HORIZON__ROOMBA_INTERVAL"] = "86400"  # measure ingest alone
    env["SKYLINE__HORIZON__MAX_AGE"] = "86400"
    if args.redis_url:
        env["SKYLINE__REDIS__URL"] = args.redis_url
    env["SKYLINE__REDIS__EMBEDDED_PERSIST"] = "false"
    for extra in args.set or []:
        k, v = extra.split("=", 1)
        env[k] = v
    subprocess.run([sys.executable, "-m", "skyline.cli.main", "start", "horizon"], cwd=workdir, env=env,
                   check=True)  # fmt: skip
    return ports, env


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="measured window per protocol")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--metrics", type=int, default=10_000)
    p.add_argument("--senders", type=int, default=2, help="generator processes per protocol")
    p.add_argument("--redis-url", help="default: the embedded Redis under the scratch dir")
    p.add_argument("--set", action="append", help="extra SKYLINE__... env override")
    p.add_argument("--only", choices=["pickle", "line"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="skyline-bench-ingest-"))
    ports, env = start_horizon(workdir, args)
    try:
        pid = int((workdir / "var" / "run" / "horizon.pid").read_text())
        horizon = psutil.Process(pid)
        url = args.redis_url or f"unix://{workdir / 'var' / 'redis' / 'redis.sock'}"
        client = redis.Redis.from_url(url)
        if args.redis_url:
            client.flushdb()
        results: dict = {"machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
                         "metrics": args.metrics, "senders": args.senders}  # fmt: skip
        for kind, port in (("pickle", ports["PICKLE_PORT"]), ("line", ports["LINE_PORT"])):
            if args.only and kind != args.only:
                continue
            results.update(run_phase(kind, port, args, client, horizon))
            print(
                f"{kind}: {results[f'{kind}_datapoints_per_s']:,} datapoints/s landed",
                file=sys.stderr,
            )
        results["horizon_cpu_s"] = round(sum(horizon.cpu_times()[:2]), 1)
    finally:
        subprocess.run([sys.executable, "-m", "skyline.cli.main", "stop", "all"], cwd=workdir, env=env,
                       capture_output=True)  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
    else:
        for k, v in results.items():
            print(f"{k:28} {v}")
    return results


if __name__ == "__main__":
    main()
