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


def test_users_changes_are_audited_reads_are_not(cli, capsys, monkeypatch):
    """The CLI's changes land in the audit log the Users page shows, as ``cli:<login>``."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from skyline.db.models import AuditEntry

    monkeypatch.setenv("LOGNAME", "ops1")
    monkeypatch.setenv("USER", "ops1")
    assert cli("users", "add", "cat", "--role", "viewer", "--generate") == 0
    assert cli("users", "passwd", "cat", "--password-stdin", stdin="another long one\n") == 0
    assert cli("users", "role", "cat", "operator") == 0
    assert cli("users", "role", "cat", "disabled") == 0
    assert cli("users", "role", "cat", "enabled") == 0
    assert cli("users", "token", "cat", "--name", "ci") == 0
    token_id = users.list_tokens(make_engine(cli.settings.database_url), "cat")[0]["id"]
    assert cli("users", "token", "cat", "--revoke", str(token_id)) == 0
    assert cli("users", "list") == 0 and cli("users", "token", "cat", "--list") == 0
    assert cli("users", "add", "cat", "--generate") == 1  # refused: nothing happened
    capsys.readouterr()
    with Session(make_engine(cli.settings.database_url)) as db:
        rows = [(r.actor, r.action, r.target, r.detail) for r in db.scalars(select(AuditEntry))]
    assert rows == [
        ("cli:ops1", "user.create", "cat", "role viewer"),
        ("cli:ops1", "user.password", "cat", None),
        ("cli:ops1", "user.role", "cat", "role operator"),
        ("cli:ops1", "user.disable", "cat", None),
        ("cli:ops1", "user.enable", "cat", None),
        ("cli:ops1", "token.create", "cat", "token 'ci'"),
        ("cli:ops1", "token.revoke", "cat", f"token {token_id}"),
    ]
