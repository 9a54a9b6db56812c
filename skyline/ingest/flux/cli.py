"""``skyline flux keys add|list|revoke``: manage flux API keys (hooked into skyline.cli.main)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from skyline.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``flux`` command to the ``skyline`` parser."""
    flux = subparsers.add_parser("flux", help="flux ingest: manage API keys")
    flux_sub = flux.add_subparsers(dest="flux_command", required=True)
    keys = flux_sub.add_parser("keys", help="add, list or revoke flux API keys")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    add = actions.add_parser("add", help="create a key (printed once) for a namespace")
    add.add_argument(
        "--namespace", required=True, help="prefix of every metric sent with the key ('' for none)"
    )
    add.add_argument("--description", default="", help="what the key is for")
    add.add_argument(
        "--key-stdin",
        action="store_true",
        help="import an existing 32-character key (e.g. from FLUX_API_KEYS) read from stdin",
    )
    add.add_argument("--json", action="store_true")
    ls = actions.add_parser("list", help="list keys (ids, namespaces; never the keys)")
    ls.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``skyline flux ...``; 0 done, 1 failed."""
    from skyline.db import SchemaOutOfDate, current_engine
    from skyline.ingest.flux import keys

    try:
        engine = current_engine(settings)
    except SchemaOutOfDate as exc:
        print(f"skyline: {exc}", file=sys.stderr)
        return 1
    action = args.keys_action
    if action == "add":
        given = sys.stdin.readline().strip() if args.key_stdin else None
        try:
            key_id, key = keys.add_key(engine, args.namespace, args.description, given)
        except keys.KeyError_ as exc:
            print(f"skyline: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"id": key_id, "key": key, "namespace": args.namespace}))
        else:
            print(key)  # alone on stdout: KEY=$(skyline flux keys add ...) captures just it
            print(f"flux key id {key_id} for namespace {args.namespace!r}; it is not shown again",
                  file=sys.stderr)  # fmt: skip
        return 0
    if action == "list":
        rows = keys.list_keys(engine)
        if args.json:
            print(json.dumps([r.__dict__ for r in rows]))
            return 0
        if rows:
            print(f"{'ID':>5}  {'NAMESPACE':<30} {'STATE':<28} DESCRIPTION")
        else:
            print(
                "no flux keys: add one with skyline flux keys add --namespace NS", file=sys.stderr
            )
        for r in rows:
            state = "revoked " + _when(r.revoked_at) if r.revoked_at else "active"
            print(f"{r.id:>5}  {r.namespace or '-':<30} {state:<28} {r.description}")
        return 0
    done = keys.revoke_key(engine, args.id)
    if args.json:
        print(json.dumps({"id": args.id, "revoked": done}))
    else:
        print(f"key {args.id} revoked" if done else f"no active key with id {args.id}")
    return 0 if done else 1


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + "+00:00" if ts else "-"
