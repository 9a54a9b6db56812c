"""Starting, stopping and inspecting daemons: pid files under ``var_dir/run``.

Used by ``skyline start|stop|restart|status`` and the ``bin/<daemon>.d`` scripts.
A daemon runs as ``python -m <its module>`` (``skyline.runtime.daemons``) in its own session, its stdout and
stderr going to ``var_dir/log/<name>.out`` (the daemon's own log is
``var_dir/log/<name>.log``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from skyline.runtime.daemons import DAEMONS, is_built, module
from skyline.runtime.membership import member_rows
from skyline.settings import Settings
from skyline.store.connection import connect, embedded
from skyline.store.keys import RedisKeys

# Parts of the design that run as commands rather than daemons in this version.
ON_DEMAND = {"crucible": "skyline crucible FILE.csv|METRIC --out DIR"}


class ControlError(RuntimeError):
    """A start/stop that did not do what was asked; the message says why."""


@dataclass
class Status:
    name: str
    state: str  # running | stopped | dead | not_built | on_demand (a command, not a daemon)
    pid: int | None = None
    heartbeat_age: float | None = None
    runs: int | None = None
    members: list[dict[str, Any]] = dataclasses.field(
        default_factory=list
    )  # live processes, any host


def _live_pid(settings: Settings, name: str) -> int | None:
    """The pid in the daemon's pid file if that process is alive and is that daemon."""
    try:
        pid = int(settings.pid_path(name).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if module(name).encode() in cmdline else None


def _heartbeat(client: redis.Redis | None, keys: RedisKeys, name: str) -> dict[str, Any] | None:
    if client is None:
        return None
    try:
        raw = client.get(keys.heartbeat(name))
    except (redis.ConnectionError, redis.TimeoutError):
        return None
    return json.loads(raw) if raw else None


def _members(client: redis.Redis | None, keys: RedisKeys, name: str) -> list[dict[str, Any]]:
    if client is None:
        return []
    try:
        return member_rows(client, keys, name, time.time())
    except (redis.ConnectionError, redis.TimeoutError):
        return []


def _client(settings: Settings) -> redis.Redis | None:
    """A Redis client if Redis is up; never starts the embedded server."""
    if settings.redis_embedded and not embedded(settings).running():
        return None
    return connect(settings, start_embedded=False)


def status(settings: Settings, names: list[str], heartbeat: bool = False) -> list[Status]:
    """Each daemon's state.  By default from its pid file (this machine's daemons);
    with ``heartbeat`` from its heartbeat in Redis alone (``alive`` or ``no_heartbeat``),
    which is what a container or another machine can see."""
    client = _client(settings)
    keys = RedisKeys(settings.redis.prefix)
    out = []
    for name in names:
        if name in ON_DEMAND:
            out.append(Status(name, "on_demand"))
            continue
        if not is_built(name):
            out.append(Status(name, "not_built"))
            continue
        beat = _heartbeat(client, keys, name)
        age = round(time.time() - beat["ts"], 3) if beat else None
        members = _members(client, keys, name)
        if heartbeat:
            out.append(Status(name, "alive" if beat else "no_heartbeat", None, age,
                              beat["runs"] if beat else None, members))  # fmt: skip
            continue
        pid = _live_pid(settings, name)
        state = "running" if pid else ("dead" if settings.pid_path(name).exists() else "stopped")
        out.append(Status(name, state, pid, age, beat["runs"] if beat else None, members))
    return out


# LSB init-script status codes (``bin/<daemon>.d status``, ``skyline status``).
RUNNING = 0
DEAD = 1  # program is dead and its pid file exists
NOT_RUNNING = 3
STATUS_UNKNOWN = 4


def exit_status(statuses: list[Status]) -> int:
    """The LSB status code of the daemons asked about: 1 if one is dead with its pid file
    left, else 3 if one is not running, else 4 if none of them is a daemon here (a
    command such as crucible, or not built), else 0."""
    states = {s.state for s in statuses}
    if "dead" in states:
        return DEAD
    if states & {"stopped", "no_heartbeat"}:
        return NOT_RUNNING
    if statuses and states <= {"on_demand", "not_built"}:
        return STATUS_UNKNOWN
    return RUNNING


def member_line(m: dict[str, Any]) -> str:
    """One live member for ``skyline status``: where it runs, and its share."""
    share = "-"
    if m.get("share") is not None:
        share = f"{float(m['share']):.1%} ({m['metrics']} metrics)"
    return (f"member {m['id']:<28} host={m['host']} pid={m['pid']} runs={m['runs']} "
            f"lease_left={m['lease_left']}s share={share}")  # fmt: skip


def status_json(statuses: list[Status]) -> str:
    return json.dumps({"daemons": [asdict(s) for s in statuses]})


def start(settings: Settings, name: str, conf_path: str | None, wait: float = 20.0) -> int:
    """Start one daemon; returns its pid.  Raises ControlError with the reason."""
    if name not in DAEMONS:
        raise ControlError(f"unknown daemon '{name}'; daemons are: {', '.join(DAEMONS)}")
    if name in ON_DEMAND:
        raise ControlError(f"{name} runs on demand, not as a daemon: {ON_DEMAND[name]}")
    if not is_built(name):
        raise ControlError(f"{name} is not built yet in this version of Skyline")
    pid = _live_pid(settings, name)
    if pid:
        return pid
    if settings.redis_embedded:
        embedded(settings).start()
    for sub in ("run", "log"):
        (settings.var_path / sub).mkdir(parents=True, exist_ok=True)
    env = {**port_overrides(settings), **os.environ, "OPENBLAS_NUM_THREADS": "1"}
    if conf_path:
        env["SKYLINE_CONF"] = str(Path(conf_path).resolve())
    out_path = settings.var_path / "log" / f"{name}.out"
    with open(out_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module(name)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    settings.pid_path(name).write_text(f"{proc.pid}\n")
    _wait_started(settings, name, proc, out_path, wait)
    _record_ports(settings, name, env)
    return proc.pid


def _wait_started(
    settings: Settings, name: str, proc: subprocess.Popen[bytes], out: Path, wait: float
) -> None:
    """Wait for the first heartbeat; fail with the daemon's last words if it died."""
    keys = RedisKeys(settings.redis.prefix)
    client = _client(settings)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            settings.pid_path(name).unlink(missing_ok=True)
            raise ControlError(
                f"{name} exited at start (status {proc.returncode}): {_last_line(out)}"
            )
        if _heartbeat(client, keys, name):
            return
        time.sleep(0.1)
    # Alive but no heartbeat yet (e.g. waiting for SQL): leave it running, say so.
    print(f"{name}: started (pid {proc.pid}) but no heartbeat yet; see {out}", file=sys.stderr)


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no output)"
    return lines[-1][:300] if lines else "(no output)"


def stop(settings: Settings, name: str, timeout: float = 15.0) -> bool:
    """SIGTERM the daemon, SIGKILL after ``timeout``; True if one was running."""
    pid = _live_pid(settings, name)
    _record_ports(settings, name, None)
    if not pid:
        settings.pid_path(name).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    settings.pid_path(name).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stop_all(settings: Settings) -> list[str]:
    """Stop every daemon (web UI first), then the embedded Redis; names stopped."""
    stopped = [name for name in reversed(DAEMONS) if is_built(name) and stop(settings, name)]
    _ports_file(settings).unlink(missing_ok=True)
    _moves_file(settings).unlink(missing_ok=True)
    if settings.redis_embedded and embedded(settings).stop():
        stopped.append("redis (embedded)")
    return stopped


# The daemons that listen; each one's settings section has its name.
LISTENERS = ("horizon", "flux", "webapp")


def listener_ports(settings: Settings) -> dict[str, list[tuple[str, str, int]]]:
    """Listener ports of each daemon as (section, key, socket type): every key of its
    section whose unit is ``port`` (horizon's come from its registered protocols)."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for daemon in LISTENERS:
        fields = type(getattr(settings, daemon)).model_fields
        out[daemon] = []
        for name, field in fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("unit") == "port":
                kind = socket.SOCK_DGRAM if extra.get("socket") == "udp" else socket.SOCK_STREAM
                out[daemon].append((daemon, name, kind))
    return out


def _ports_file(settings: Settings) -> Path:
    """What the listeners listen on: one ``SKYLINE__<SECTION>__<KEY>=port`` line per
    port of each running listener, rewritten whenever one starts or stops."""
    return settings.var_path / "run" / "ports.env"


def _moves_file(settings: Settings) -> Path:
    """The ports ``pick_free_ports`` moved, in the same form (the overrides it applies)."""
    return settings.var_path / "run" / "ports.moved"


def env_key(section: str, key: str) -> str:
    return f"SKYLINE__{section.upper()}__{key.upper()}"


def _read_env(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _write_env(path: Path, values: dict[str, str], header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{k}={v}\n" for k, v in sorted(values.items()))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"# {header}\n{body}")
    tmp.replace(path)


def port_overrides(settings: Settings) -> dict[str, str]:
    """Ports moved by ``pick_free_ports`` (``var/run/ports.moved``), as env overrides."""
    return _read_env(_moves_file(settings))


def _effective_ports(settings: Settings, daemon: str, env: dict[str, str]) -> dict[str, str]:
    """The ports ``daemon`` listens on when started with ``env``: an environment override
    (the operator's, or a move) wins over the settings it was loaded with."""
    out = {}
    for section, key, _kind in listener_ports(settings).get(daemon, []):
        name = env_key(section, key)
        out[name] = env.get(name) or str(getattr(getattr(settings, section), key))
    return out


def _record_ports(settings: Settings, daemon: str, env: dict[str, str] | None) -> None:
    """Rewrite ``daemon``'s lines of ``ports.env``: its ports when ``env`` is given (it
    was started with it), none when it stopped."""
    if daemon not in LISTENERS:
        return
    path = _ports_file(settings)
    current = _read_env(path)
    mine = {env_key(sec, key) for sec, key, _ in listener_ports(settings)[daemon]}
    kept = {k: v for k, v in current.items() if k not in mine}
    if env is not None:
        kept.update(_effective_ports(settings, daemon, env))
    if kept:
        _write_env(path, kept, "the ports Skyline's listeners use (skyline start/stop writes this)")
    else:
        path.unlink(missing_ok=True)


def port_table(settings: Settings) -> list[list[str]]:
    """[daemon, setting, port, protocol] of every port in ``ports.env``."""
    listening = _read_env(_ports_file(settings))
    moved = port_overrides(settings)
    rows = []
    for daemon, ports in listener_ports(settings).items():
        for section, key, kind in ports:
            name = env_key(section, key)
            if name in listening:
                note = "moved" if moved.get(name) == listening[name] else ""
                proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                rows.append([daemon, f"[{section}] {key}", listening[name], proto, note])
    return rows


def _bindable(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _os_free_port(host: str, kind: int, avoid: set[int]) -> int:
    """A port the OS says is free now (bind to port 0), not one already handed out."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port: int = s.getsockname()[1]
        if port not in avoid:
            return port


def pick_free_ports(settings: Settings) -> list[str]:
    """Move every taken listener port of the built daemons that are not running to a
    port the OS says is free, record the moves in ``var/run/ports.moved`` and describe
    them.  A port set in the environment is the operator's choice and never moved."""
    old = port_overrides(settings)
    moves: dict[str, str] = {}
    said = []
    given: set[int] = set()
    for daemon, ports in listener_ports(settings).items():
        if not is_built(daemon):
            continue
        running = _live_pid(settings, daemon) is not None
        for section, key, kind in ports:
            name = env_key(section, key)
            cfg = getattr(settings, section)
            if name in os.environ:
                continue  # the operator chose this port explicitly
            if running:  # keep what it listens on
                if name in old:
                    moves[name] = old[name]
                continue
            configured = int(getattr(cfg, key))
            port = int(old.get(name, configured))
            if port in given or not _bindable(cfg.bind, port, kind):
                port = configured if configured not in given and _bindable(
                    cfg.bind, configured, kind) else _os_free_port(cfg.bind, kind, given)  # fmt: skip
            given.add(port)
            if port != configured:
                moves[name] = str(port)
                said.append(
                    f"[{section}] {key} {configured} is taken: using {port} ({name}={port})"
                )
    if moves:
        _write_env(_moves_file(settings), moves, "listener ports moved by --pick-free-ports")
    else:
        _moves_file(settings).unlink(missing_ok=True)
    return said
