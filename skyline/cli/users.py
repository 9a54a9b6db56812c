"""``skyline users add|list|passwd|role|token`` and ``skyline demo``.

Passwords are read from the terminal (asked twice), from the first line of stdin
with ``--password-stdin`` (also when stdin is not a terminal), or generated with
``--generate``.  A generated password or a new API token is the only thing printed on
stdout (``PW=$(skyline users add ann --generate)``); what it is goes to stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from skyline.cli.output import table
from skyline.db.models import ROLES
from skyline.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="web UI and API users, passwords and API tokens")
    u = users.add_subparsers(dest="action", required=True)
    add = u.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="viewer")
    _password_options(add)
    ls = u.add_parser("list", help="users, their roles and number of live tokens")
    ls.add_argument("--json", action="store_true")
    pw = u.add_parser("passwd", help="set a user's password (ends the user's sessions)")
    pw.add_argument("username")
    _password_options(pw)
    role = u.add_parser("role", help="change a user's role, or disable/enable the account")
    role.add_argument("username")
    role.add_argument("role", choices=(*ROLES, "disabled", "enabled"))
    tok = u.add_parser("token", help="create an API token for a program (printed once)")
    tok.add_argument("username")
    tok.add_argument("--name", default="api", help="what the token is for")
    tok.add_argument("--list", action="store_true", help="list the user's tokens instead")
    tok.add_argument("--revoke", type=int, metavar="ID", help="revoke token ID instead")
    tok.add_argument("--json", action="store_true")

    from skyline.cli import demo

    dp = sub.add_parser("demo", help="feed synthetic metrics with anomalies through horizon")
    demo.add_arguments(dp)


def _password_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    g.add_argument(
        "--generate", action="store_true", help="generate a random password and print it"
    )


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated)."""
    from skyline.webapp.users import random_password

    if args.generate:
        return random_password(), True
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValueError(
                'no password on stdin: pipe one (echo "$PW" | skyline users ... '
                "--password-stdin) or use --generate"
            )
        return line, False
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first, False


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from skyline.db import SchemaOutOfDate, current_engine
    from skyline.webapp import users

    try:
        engine = current_engine(settings)
        status = _users(args, settings, engine)
        if status == 0:
            _audit(engine, args)
        return status
    except (users.UserError, ValueError, SchemaOutOfDate) as exc:
        print(f"skyline users: {exc}", file=sys.stderr)
        return 1


def _audit(engine, args: argparse.Namespace) -> None:  # noqa: ANN001
    """The change just made, in the webapp's audit log (actor ``cli:<login name>``)."""
    from skyline.webapp import audit

    if args.action == "list" or (args.action == "token" and args.list):
        return  # a read, not a change
    if args.action == "role" and args.role in ("disabled", "enabled"):
        action, detail = f"user.{args.role.removesuffix('d')}", ""
    elif args.action == "token":
        action = "token.revoke" if args.revoke is not None else "token.create"
        detail = f"token {args.revoke}" if args.revoke is not None else f"token {args.name!r}"
    else:
        action = {"add": "user.create", "passwd": "user.password", "role": "user.role"}[args.action]
        detail = f"role {args.role}" if args.action in ("add", "role") else ""
    audit.record(engine, f"cli:{_login_name()}", action, args.username, detail)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER in a container
        return "unknown"


def _users(args: argparse.Namespace, settings: Settings, engine) -> int:  # noqa: ANN001
    from skyline.webapp import users

    if args.action == "add":
        password, generated = _password(args)
        users.add_user(engine, args.username, password, args.role)
        _done(f"created {args.username} ({args.role})", password if generated else None)
    elif args.action == "passwd":
        password, generated = _password(args)
        users.set_password(engine, args.username, password)
        users.forget_admin_password(settings, args.username)
        _done(f"password of {args.username} changed", password if generated else None)
    elif args.action == "list":
        rows = users.list_users(engine)
        if args.json:
            print(json.dumps(rows))
        else:
            print(table(["user", "role", "tokens", "state"],
                        [[r["username"], r["role"], r["tokens"],
                          "disabled" if r["disabled"] else "enabled"] for r in rows]))  # fmt: skip
    elif args.action == "role":
        if args.role in ("disabled", "enabled"):
            users.set_disabled(engine, args.username, args.role == "disabled")
        else:
            users.set_role(engine, args.username, args.role)
        print(f"{args.username}: {args.role}")
    else:
        return _tokens(args, engine)
    return 0


def _done(message: str, secret: str | None) -> None:
    """The message, or with a secret: the secret alone on stdout, the message on stderr."""
    if secret is None:
        print(message)
        return
    print(secret)
    print(f"{message}; the generated password above is not shown again", file=sys.stderr)


def _tokens(args: argparse.Namespace, engine) -> int:  # noqa: ANN001
    from skyline.webapp import users

    if args.list:
        rows = users.list_tokens(engine, args.username)
        print(json.dumps(rows) if args.json else table(["id", "name", "state"], [
            [r["id"], r["name"], "revoked" if r["revoked"] else "active"] for r in rows]))  # fmt: skip
        return 0
    if args.revoke is not None:
        if not users.revoke_token(engine, args.username, args.revoke):
            print(
                f"skyline users: {args.username} has no active token {args.revoke}", file=sys.stderr
            )
            return 1
        print(f"revoked token {args.revoke} of {args.username}")
        return 0
    token = users.create_token(engine, args.username, args.name)
    if args.json:
        print(json.dumps({"token": token}))
    else:
        print(token)
        print("Send it as 'Authorization: Bearer <token>'; it is not shown again.", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from skyline.cli import demo

    return demo.run(args, args.config)
