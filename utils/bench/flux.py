"""Benchmark flux: datapoints/s through batched JSON POSTs and Prometheus remote_write
against the flux daemon running gunicorn on this machine.

Starts a private redis-server, SQLite under a temporary var_dir, the flux daemon
(``python -m skyline.ingest.flux``, gunicorn, ``--workers`` gthread workers) on free ports,
then sends pre-built requests from ``--clients`` keep-alive connections for
``--seconds`` per protocol.  ``--json``: the last line is one JSON object.

    python utils/bench/flux.py --seconds 5 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from cramjam import snappy  # noqa: E402

from skyline.db import make_engine, migrate  # noqa: E402
from skyline.ingest.flux.keys import add_key  # noqa: E402
from skyline.ingest.flux.prometheus import WriteRequest  # noqa: E402
from skyline.settings import load_settings  # noqa: E402
from skyline.store.connection import _server_binary  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def json_bodies(n_bodies: int, batch: int, metrics: int) -> list[bytes]:
    now = int(time.time())
    return [
        json.dumps(
            {
                "metrics": [
                    {
                        "metric": f"bench.json.m{(b * batch + i) % metrics}",
                        "timestamp": now,
                        "value": i,
                    }
                    for i in range(batch)
                ]
            }
        ).encode()  # fmt: skip
        for b in range(n_bodies)
    ]


def remote_write_bodies(n_bodies: int, batch: int, metrics: int) -> list[bytes]:
    ms = int(time.time() * 1000)
    out = []
    for b in range(n_bodies):
        req = WriteRequest()
        for i in range(batch):
            ts = req.timeseries.add()
            m = (b * batch + i) % metrics
            for k, v in (("__name__", f"bench_metric_{m % 100}"), ("instance", "10.0.0.1:9100"),
                         ("job", "node"), ("shard", str(m // 100))):  # fmt: skip
                ts.labels.add(name=k, value=v)
            ts.samples.add(value=float(i), timestamp=ms)
        out.append(bytes(snappy.compress_raw(req.SerializeToString())))
    return out


def drive(port: int, path: str, bodies: list[bytes], headers: dict[str, str],
          per_body: int, seconds: float, clients: int) -> dict[str, float]:  # fmt: skip
    sent = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = c
        while time.monotonic() < stop:
            conn.request("POST", path, body=bodies[i % len(bodies)], headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 204:
                sent[c] += per_body
            else:
                errors[c] += 1
            i += clients
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return {"datapoints_per_s": round(sum(sent) / elapsed), "errors": sum(errors)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=2000, help="datapoints per request")
    p.add_argument("--metrics", type=int, default=20000, help="distinct metric names")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="flux-bench-"))
    redis_port, http_port = free_port(), free_port()
    redis_proc = subprocess.Popen(
        [_server_binary(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    env = {**os.environ, "SKYLINE__SKYLINE__VAR_DIR": str(tmp / "var"),
           "SKYLINE__REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
           "SKYLINE__FLUX__PORT": str(http_port), "SKYLINE__FLUX__STATSD_PORT": str(free_port()),
           "SKYLINE__FLUX__WORKERS": str(args.workers), "SKYLINE__FLUX__RATE_LIMIT": "0",
           "SKYLINE__SKYLINE__LOG_LEVEL": "WARNING"}  # fmt: skip
    settings = load_settings(None, env=env)
    migrate.upgrade(settings.database_url)
    _, key = add_key(make_engine(settings.database_url), "")
    flux = subprocess.Popen([sys.executable, "-m", "skyline.ingest.flux"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", http_port, timeout=2).request(
                    "GET", "/flux/metric_data?status=true")  # fmt: skip
                break
            except OSError:
                assert time.monotonic() < deadline, "flux did not start"
                time.sleep(0.2)
        time.sleep(1.0)  # let every worker import the app
        n = 40
        headers = {"key": key, "Content-Type": "application/json"}
        js = drive(http_port, "/flux/metric_data_post", json_bodies(n, args.batch, args.metrics),
                   headers, args.batch, args.seconds, args.clients)  # fmt: skip
        headers = {"key": key, "Content-Type": "application/x-protobuf",
                   "Content-Encoding": "snappy"}  # fmt: skip
        rw = drive(http_port, "/flux/prometheus/write",
                   remote_write_bodies(n, args.batch, args.metrics), headers, args.batch,
                   args.seconds, args.clients)  # fmt: skip
    finally:
        flux.terminate()
        flux.wait(20)
        redis_proc.terminate()
        redis_proc.wait(10)
    result = {
        "json_post_datapoints_per_s": js["datapoints_per_s"],
        "remote_write_datapoints_per_s": rw["datapoints_per_s"],
        "errors": js["errors"] + rw["errors"],
        "batch": args.batch, "workers": args.workers, "clients": args.clients,
        "cpus": os.cpu_count(),
    }  # fmt: skip
    if not args.json:
        print(f"JSON POST      {result['json_post_datapoints_per_s']:>10,} datapoints/s")
        print(f"remote_write   {result['remote_write_datapoints_per_s']:>10,} datapoints/s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
