"""The ``skyline`` command for people and for scripts, as real processes: headers, ISO
times and rounded numbers in plain output, exact ``--json``, no traceback on a closed
pipe, secrets alone on stdout, LSB exit codes of ``bin/<daemon>.d status``."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from skyline.cli.output import EXIT_CLOSED_PIPE, iso, num, seconds, table
from skyline.db import make_engine
from skyline.db.models import Anomaly, Metric
from tests.conftest import wait_for
from tests.integration.test_control import (  # noqa: F401
    ROOT,
    alive,
    skyline,
    upgraded_db,
    workdir,
)

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5192e-05, "1.519e-05"),
        (0.1 + 0.2, "0.3"),
        (1234.56789, "1235"),
        (7.0, "7"),
        (-2.5, "-2.5"),
        (42, "42"),
        (None, "-"),
        (float("nan"), "nan"),
    ],
)
def test_num_rounds_for_people(value, expected):
    assert num(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "-"), (0.25, "0.2s"), (12.4, "12s"), (245, "4m05s"), (7800, "2h10m")],
)
def test_seconds(value, expected):
    assert seconds(value) == expected


@pytest.mark.parametrize(
    ("ts", "tz", "expected"),
    [
        (0, dt.UTC, "1970-01-01T00:00:00+00:00"),
        (1700000000.9, dt.UTC, "2023-11-14T22:13:20+00:00"),
        (1700000000, dt.timezone(dt.timedelta(hours=-5)), "2023-11-14T17:13:20-05:00"),
        (None, None, "-"),
    ],
)
def test_iso_has_the_zone(ts, tz, expected):
    assert iso(ts, tz) == expected


def test_table_has_a_header_and_aligned_columns():
    assert table(
        ["name", "state", "note"], [["horizon", "running", "x"], ["ab", "stopped", ""]]
    ) == ("NAME     STATE    NOTE\nhorizon  running  x\nab       stopped")


def _record_anomalies(cwd: Path, n: int) -> None:
    engine = make_engine(f"sqlite:///{cwd / 'var' / 'skyline.db'}")
    with Session(engine) as db:
        metric = Metric(name="web.latency")
        db.add(metric)
        db.flush()
        for i in range(n):
            db.add(Anomaly(metric_id=metric.id, timestamp=1700000000 + 60 * i, value=0.1 + 0.2,
                           full_duration=86400, source="analyzer", event_id=f"e{i}",
                           triggered_algorithms=["grubbs"], verdict="alerted"))  # fmt: skip
        db.commit()
    engine.dispose()


def test_anomalies_list_plain_and_json(workdir):  # noqa: F811
    cwd, env = workdir
    _record_anomalies(cwd, 3)
    plain = skyline(cwd, "anomalies", "list", env=env)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].split() == ["ID", "TIME", "METRIC", "VALUE", "VERDICT"]
    assert len(lines) == 4
    assert re.search(ISO, lines[1]) and "1700000120" not in lines[1]
    assert " 0.3 " in lines[1] and "0.30000000000000004" not in plain.stdout
    exact = json.loads(skyline(cwd, "anomalies", "list", "--json", env=env).stdout)
    assert exact[0]["timestamp"] == 1700000120 and exact[0]["value"] == 0.1 + 0.2
    empty = skyline(cwd, "anomalies", "list", "--metric", "nope", env=env)
    assert empty.stdout == "" and "no anomalies recorded" in empty.stderr


def _closed_pipe_run(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has already gone: every write fails (EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "skyline.cli.main", *args], cwd=cwd, env=env,
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    finally:
        os.close(write)


CLOSED_PIPE_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["anomalies", "list"],
    ["anomalies", "list", "--json"],
    ["users", "list"],
    ["config", "template"],
]


def test_closed_pipe_gives_no_traceback(workdir):  # noqa: F811
    cwd, env = workdir
    _record_anomalies(cwd, 2)
    for argv in CLOSED_PIPE_COMMANDS:  # one install for all: each command is a process
        out = _closed_pipe_run(cwd, env, *argv)
        assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, (argv, out.stderr)
        assert out.returncode == EXIT_CLOSED_PIPE, argv


def test_shell_pipe_into_head(workdir):  # noqa: F811
    cwd, env = workdir
    _record_anomalies(cwd, 5000)
    out = subprocess.run(f"{sys.executable} -m skyline.cli.main anomalies list --limit 5000 | head -2",
                         shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout.splitlines()[0].startswith("ID") and len(out.stdout.splitlines()) == 2
    assert "Traceback" not in out.stderr, out.stderr


def test_secrets_alone_on_stdout(workdir):  # noqa: F811
    cwd, env = workdir
    key = skyline(cwd, "flux", "keys", "add", "--namespace", "team.a", env=env)
    assert key.returncode == 0, key.stderr
    assert re.fullmatch(r"\S+\n", key.stdout) and "not shown again" in key.stderr
    listed = skyline(cwd, "flux", "keys", "list", env=env).stdout.splitlines()
    assert listed[0].split() == ["ID", "NAMESPACE", "STATE", "DESCRIPTION"]
    assert "team.a" in listed[1] and key.stdout.strip() not in "\n".join(listed)
    # users add without a terminal: stdin is not a tty here
    gen = subprocess.run([sys.executable, "-m", "skyline.cli.main", "users", "add", "ann",
                          "--generate"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    password = gen.stdout.strip()
    assert re.fullmatch(r"\S{12,}\n", gen.stdout) and "created ann (viewer)" in gen.stderr
    from skyline.webapp import users

    engine = make_engine(f"sqlite:///{cwd / 'var' / 'skyline.db'}")
    assert users.authenticate(engine, "ann", password)
    piped = subprocess.run([sys.executable, "-m", "skyline.cli.main", "users", "add", "bob",
                            "--password-stdin"], cwd=cwd, env=env, input="a long password\n",
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert piped.returncode == 0 and piped.stdout == "created bob (viewer)\n", piped.stderr
    assert users.authenticate(engine, "bob", "a long password")
    nothing = subprocess.run([sys.executable, "-m", "skyline.cli.main", "users", "add", "cy"],
                             cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert nothing.returncode == 1 and "--password-stdin" in nothing.stderr
    token = skyline(cwd, "users", "token", "ann", env=env)
    assert re.fullmatch(r"\S+\n", token.stdout) and "Bearer" in token.stderr
    assert users.token_principal(engine, token.stdout.strip()).username == "ann"
    engine.dispose()


def _daemon_status(env: dict, name: str = "thunder") -> int:
    return subprocess.run([str(ROOT / "bin" / f"{name}.d"), "status"], env=env,
                          capture_output=True, timeout=120).returncode  # fmt: skip


def test_bin_status_exit_codes_follow_lsb(workdir):  # noqa: F811
    cwd, env = workdir
    env = {**env, "SKYLINE__SKYLINE__VAR_DIR": str(cwd / "var")}
    assert _daemon_status(env) == 3  # not running
    assert skyline(cwd, "start", "thunder", env=env).returncode == 0
    assert _daemon_status(env) == 0  # running
    pid = int((cwd / "var" / "run" / "thunder.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid))
    assert _daemon_status(env) == 1  # dead, pid file left
    assert _daemon_status(env, "crucible") == 4  # a command, not a daemon
    assert _daemon_status({**env, "SKYLINE__THUNDER__INTERVAL": "often"}) == 4  # unknown


@pytest.mark.parametrize(("argv", "says"), [
    (["metrics", "list"], "skyline: Redis: "),
    (["anomalies", "list"], "run `skyline db upgrade`"),
    (["alerts", "mutes"], "run `skyline db upgrade`"),
])  # fmt: skip
def test_a_service_away_or_unmigrated_is_one_line_not_a_traceback(tmp_path, capsys, argv, says):
    """Redis refusing connections, a database never migrated: the command says so in
    one line on stderr and exits 1 (found by a hunt: these printed tracebacks)."""
    from skyline.cli.main import main
    from tests.conftest import free_port

    conf = tmp_path / "s.toml"
    conf.write_text(f'[skyline]\nvar_dir = "{tmp_path / "var"}"\n'
                    f'[redis]\nurl = "redis://127.0.0.1:{free_port()}/0"\n'
                    f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')  # fmt: skip
    assert main(["--config", str(conf), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skyline: ") and says in err and "Traceback" not in err
    assert err.count("\n") == 1
