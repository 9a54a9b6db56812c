"""vista's MLflow source against a real ``mlflow server`` on loopback, with runs logged
by MLflow's own client.  Both run from ``.venv-mlflow`` (make install-test): mlflow's
pins conflict with Skyline's, so it cannot live in the test venv."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, wait_for
from tests.integration.vista_fixtures import Harness, vista_conf
from tests.peers import require

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]
MLFLOW_PYTHON = Path(os.environ.get("SKYLINE_TEST_MLFLOW_PYTHON", ROOT / ".venv-mlflow/bin/python"))

LOG_RUNS = """
import sys, time, mlflow
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
exp = mlflow.set_experiment("churn")
t0 = int(sys.argv[2])
done = client.create_run(exp.experiment_id, run_name="finished")
for i in range(20):
    client.log_metric(done.info.run_id, "loss", 1.0 / (i + 1), timestamp=(t0 + 60 * i) * 1000, step=i)
client.set_terminated(done.info.run_id)
live = client.create_run(exp.experiment_id, run_name="running")
for i in range(int(sys.argv[3])):
    client.log_metric(live.info.run_id, "auc", 0.5 + i / 100, timestamp=(t0 + 60 * i) * 1000, step=i)
print(live.info.run_id)
"""

MORE = """
import sys, mlflow
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
t0 = int(sys.argv[3])
for i in range(1, 6):
    client.log_metric(sys.argv[2], "auc", 0.9, timestamp=(t0 + 10 * i) * 1000, step=9 + i)
"""


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not MLFLOW_PYTHON.exists():
        require("mlflow", f"{MLFLOW_PYTHON} is missing: make install-test creates .venv-mlflow")
    d = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with open(d / "mlflow.log", "wb") as log:
        proc = subprocess.Popen(
            [str(MLFLOW_PYTHON), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{d / 'mlflow.db'}",
             "--default-artifact-root", str(d / "artifacts"), "--workers", "1"],
            stdout=log, stderr=log, env=env, cwd=d, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=2).ok
        except requests.RequestException:
            return proc.poll() is not None and pytest.fail((d / "mlflow.log").read_text()[-2000:])

    try:
        wait_for(up, timeout=120, interval=0.5)
        yield url
    finally:  # the server and the workers it started: its own process group
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)


def _client(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run([str(MLFLOW_PYTHON), "-c", script, *args], capture_output=True,
                         text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()  # mlflow prints links to the runs too
    return lines[-1] if lines else ""


def test_mlflow_runs_finished_and_running(mlflow_url: str, make_settings, tmp_path: Path) -> None:
    t0 = int(time.time()) // 60 * 60 - 3600
    run_id = _client(LOG_RUNS, mlflow_url, str(t0), "10")
    conf = vista_conf(tmp_path / "s.conf", {
        "name": "ml", "kind": "mlflow", "url": mlflow_url, "query": "churn",
        "namespace": "ml", "backfill_days": 0.1,
    })  # fmt: skip
    h = Harness(make_settings(conf))
    now = t0 + 3600
    r = h.pull("ml", now)
    assert r.metrics == 2
    loss = h.store.read("ml.churn.finished.loss")
    assert loss.timestamps.tolist() == [t0 + 60 * i for i in range(20)]
    assert loss.values[-1] == pytest.approx(1 / 20)
    assert len(h.store.read("ml.churn.running.auc")) == 10
    # the running run logs more: only the new points are stored
    _client(MORE, mlflow_url, run_id, str(now))  # logged at the current time
    r = h.pull("ml", now + 60)
    assert r.new == 5
    auc = h.store.read("ml.churn.running.auc")
    assert auc.timestamps.tolist() == [t0 + 60 * i for i in range(10)] + [
        now + 10 * i for i in range(1, 6)
    ]
    assert h.raw_count("ml.churn.running.auc") == 15
    h.close()
