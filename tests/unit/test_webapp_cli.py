"""``skyline users ...`` handlers (through a parser built with cli_users.register)."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from skyline.cli import users as cli_users
from skyline.db import make_engine, migrate
from skyline.settings import load_settings
from skyline.webapp import users


@pytest.fixture
def cli(tmp_path, monkeypatch):
    settings = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path)})
    migrate.upgrade(settings.database_url)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    cli_users.register(parser.add_subparsers(dest="command"))

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return cli_users.cmd_users(parser.parse_args(argv), settings)

    run.settings = settings  # type: ignore[attr-defined]
    return run


def test_users_add_list_passwd_role_token(cli, capsys):
    assert (
        cli(
            "users",
            "add",
            "ann",
            "--role",
            "operator",
            "--password-stdin",
            stdin="a long password\n",
        )
        == 0
    )
    assert cli("users", "add", "ann", "--password-stdin", stdin="a long password\n") == 1
    assert "exists" in capsys.readouterr().err
    assert cli("users", "add", "bob", "--generate") == 0
    said = capsys.readouterr()
    generated = said.out.strip()  # the password alone on stdout, the sentence on stderr
    assert said.out == generated + "\n" and "created bob (viewer)" in said.err
    engine = make_engine(cli.settings.database_url)
    assert users.authenticate(engine, "bob", generated).role == "viewer"
    assert cli("users", "passwd", "bob", stdin="another password\n") == 0
    assert users.authenticate(engine, "bob", "another password")
    assert cli("users", "passwd", "bob", stdin="short\n") == 1
    assert cli("users", "role", "bob", "admin") == 0
    capsys.readouterr()
    assert cli("users", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["username"], r["role"]) for r in rows] == [("ann", "operator"), ("bob", "admin")]
    assert cli("users", "token", "ann", "--name", "grafana", "--json") == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert users.token_principal(engine, token).username == "ann"
    assert cli("users", "token", "ann", "--list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "grafana" and not listed["revoked"]
    assert cli("users", "token", "ann", "--revoke", str(listed["id"])) == 0
    assert users.token_principal(engine, token) is None
    assert cli("users", "token", "nobody") == 1
