"""The ``skyline`` command.  Every ``--json`` output is one JSON document on stdout.

Exit status: 0 done, 1 the operation failed, 2 bad usage or invalid settings,
141 stdout was closed early (``skyline ... | head``: no traceback, the rest is dropped).
``status`` follows the LSB init-script codes: 0 running, 1 dead with a pid file left,
3 not running, 4 unknown (a command rather than a daemon, or the settings are invalid).

Plain output is for people (a header, ISO times with the zone, rounded numbers, see
``skyline.cli.output``); ``--json`` output is exact and meant for programs.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Callable

import redis
import sqlalchemy.exc

from skyline.analysis.crucible import cli as crucible_cli
from skyline.analysis.nab import cli as nab_cli
from skyline.cli import pipeline as cli_pipeline
from skyline.cli import users as cli_users
from skyline.cli.output import closed_pipe_safe, iso, num, seconds, table
from skyline.db.engine import DatabaseUnavailable
from skyline.db.migrate import SchemaOutOfDate
from skyline.ingest.flux import cli as flux_cli
from skyline.ingest.vista import cli as vista_cli
from skyline.runtime import control
from skyline.runtime.daemons import DAEMONS, built
from skyline.settings import Settings, SettingsError, load_settings, redacted


def _targets(names: list[str]) -> list[str]:
    if not names or names == ["all"]:
        return list(DAEMONS)
    unknown = [n for n in names if n not in DAEMONS]
    if unknown:
        raise SystemExit(
            _fail(f"unknown daemon {unknown[0]!r}; daemons: all, {', '.join(DAEMONS)}", 2)
        )
    return names


def _fail(message: str, code: int = 1) -> int:
    print(f"skyline: {message}", file=sys.stderr)
    return code


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    names = _targets(args.names)
    everything = not args.names or args.names == ["all"]
    if args.pick_free_ports:
        for line in control.pick_free_ports(settings):
            print(line)
    code = 0
    for name in names:
        if everything and name not in built():
            continue
        try:
            pid = control.start(settings, name, args.config)
            print(f"{name}: running (pid {pid})")
        except control.ControlError as exc:
            code = _fail(str(exc))
    rows = control.port_table(settings)
    if rows and (everything or args.pick_free_ports):
        print("\nlistening (var/run/ports.env):")
        print(table(["daemon", "setting", "port", "proto", "note"], rows))
    return code


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    if not args.names or args.names == ["all"]:
        stopped = control.stop_all(settings)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    for name in _targets(args.names):
        print(f"{name}: {'stopped' if control.stop(settings, name) else 'was not running'}")
    return 0


def cmd_restart(args: argparse.Namespace, settings: Settings) -> int:
    for name in _targets(args.names):
        if name in built():
            control.stop(settings, name)
    return cmd_start(args, settings)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    statuses = control.status(settings, _targets(args.names), heartbeat=args.heartbeat)
    if args.json:
        print(control.status_json(statuses))
        return control.exit_status(statuses)
    rows = [[s.name, s.state, s.pid or "-", seconds(s.heartbeat_age), num(s.runs)]
            for s in statuses]  # fmt: skip
    print(table(["daemon", "state", "pid", "heartbeat age", "runs"], rows))
    for s in statuses:  # every live process of each daemon, on any host, and its share
        for m in s.members:
            print(f"{s.name:<11} " + control.member_line(m))
    return control.exit_status(statuses)


def cmd_config(args: argparse.Namespace, settings: Settings | None) -> int:
    from skyline.settings.doc import render_template, render_toml

    if args.action == "template":
        print(render_template(), end="")
        return 0
    if args.action == "check":
        path = args.file or args.config
        load_settings(path)  # raises SettingsError, reported by main()
        print(f"{path or 'settings'}: OK")
        return 0
    assert settings is not None
    data = redacted(settings)
    print(
        json.dumps(data) if args.json else render_toml(settings, data),
        end="\n" if args.json else "",
    )
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from skyline.db import engine_for, migrate

    if args.action == "upgrade":
        settings.var_path.mkdir(parents=True, exist_ok=True)  # SQLite's default file is there
        migrate.upgrade(settings.database_url)
        from skyline.analysis.ionosphere.features import sync_features

        engine = engine_for(settings)
        added = sync_features(engine)  # ionosphere's stable feature ids
        engine.dispose()
        print(f"database at revision {migrate.head_revision()} ({added} features added)")
        return 0
    engine = engine_for(settings)
    current = migrate.current_revision(engine)
    print(f"current {current or 'none'}, head {migrate.head_revision()}")
    return 0 if current == migrate.head_revision() else 1


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from skyline.store.connection import connect
    from skyline.store.keys import RedisKeys
    from skyline.store.timeseries import TimeSeriesStore

    store = TimeSeriesStore(connect(settings), RedisKeys(settings.redis.prefix))
    if args.action == "list":
        names = store.metrics()
        if args.pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, args.pattern)]
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    series = store.read(args.name)
    keep = series.timestamps >= (args.from_ts or 0)
    pairs = [
        [int(t), float(v)]
        for t, v in zip(series.timestamps[keep], series.values[keep], strict=True)
    ]
    if not pairs and args.name not in store.metrics():
        return _fail(f"no metric named {args.name!r}")
    if args.json:
        print(json.dumps(pairs))
    else:
        print(table(["time", "value"], [[iso(t), num(v)] for t, v in pairs]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skyline", description="Real-time anomaly detection for metrics."
    )
    p.add_argument(
        "--config", metavar="FILE", help="settings file (default $SKYLINE_CONF or etc/skyline.conf)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in [
        ("start", "start daemons"),
        ("stop", "stop daemons (all: also the embedded Redis)"),
        ("restart", "restart daemons"),
        ("status", "show daemons' state and heartbeat age"),
    ]:
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("names", nargs="*", metavar="all|NAME")
        sp.add_argument("--json", action="store_true")
        if name == "status":
            sp.add_argument(
                "--heartbeat",
                action="store_true",
                help="judge by the heartbeat in Redis alone (containers, other machines); "
                "exit 3 if a daemon has none",
            )
        if name in ("start", "restart"):
            sp.add_argument(
                "--pick-free-ports",
                action="store_true",
                help="move listener ports that are taken to free ones (recorded in var/run/ports.env)",
            )
    cfg = sub.add_parser("config", help="check or show the settings")
    cfg.add_argument("action", choices=["check", "show", "template"])
    cfg.add_argument("file", nargs="?")
    cfg.add_argument("--json", action="store_true")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    met = sub.add_parser("metrics", help="list metrics or print one metric's data")
    met_sub = met.add_subparsers(dest="action", required=True)
    ml = met_sub.add_parser("list")
    ml.add_argument("--pattern", help="shell-style pattern, e.g. 'stats.*'")
    ml.add_argument("--json", action="store_true")
    mg = met_sub.add_parser("get")
    mg.add_argument("name")
    mg.add_argument("--from", dest="from_ts", type=int, metavar="TS")
    mg.add_argument("--json", action="store_true")
    cli_pipeline.register(sub)
    flux_cli.register(sub)
    vista_cli.register(sub)
    nab_cli.register(sub)
    crucible_cli.register(sub)
    cli_users.register(sub)
    return p


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "start": cmd_start,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "status": cmd_status,
    "db": cmd_db,
    "metrics": cmd_metrics,
    "alerts": cli_pipeline.cmd_alerts,
    "anomalies": cli_pipeline.cmd_anomalies,
    "flux": flux_cli.run,
    "vista": vista_cli.run,
    "import": vista_cli.run_import,
    "crucible": crucible_cli.run,
    "users": cli_users.cmd_users,
    "demo": cli_users.cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    return closed_pipe_safe(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "nab":  # needs no settings
        return nab_cli.main(args)
    try:
        if args.command == "config" and args.action in ("check", "template"):
            return cmd_config(args, None)
        if args.command == "config":  # show: the FILE given, else the settings in use
            return cmd_config(args, load_settings(args.file or args.config))
        settings = load_settings(args.config)
        return COMMANDS[args.command](args, settings)
    except SettingsError as exc:
        # LSB: a status that cannot be determined is "unknown" (4), not "bad usage"
        return _fail(str(exc), control.STATUS_UNKNOWN if args.command == "status" else 2)
    except SERVICE_ERRORS as exc:  # a service the command needs: one line, not a traceback
        code = control.STATUS_UNKNOWN if args.command == "status" else 1
        return _fail(_service_error(exc), code)


# what a command meets when Redis or the database is away, wrong, or not migrated
SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.AuthenticationError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.ArgumentError,
    sqlalchemy.exc.NoSuchModuleError,
    SchemaOutOfDate,
    DatabaseUnavailable,
)


def _service_error(exc: BaseException) -> str:
    what = "Redis" if isinstance(exc, redis.RedisError) else "the database"
    detail = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
    if isinstance(exc, SchemaOutOfDate):
        return detail
    return f"{what}: {detail or type(exc).__name__} (check [redis] url / [database] url)"


if __name__ == "__main__":
    sys.exit(main())
