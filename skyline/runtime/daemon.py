"""The base every Skyline daemon stands on.

A daemon subclasses ``Daemon`` and writes ``run_once`` (one pass of its work);
``Daemon.run`` supplies the rest: the loop and its cadence, a heartbeat key with
a TTL, counters published as ordinary metrics ``skyline.<daemon>.<host>.<name>``,
graceful stop on SIGTERM/SIGINT (``flush`` is called before exit), SIGHUP to
reopen logs and reload the rule tables (``reload.py``), systemd's notify protocol
(``systemd.py``), and the one exception policy below.

Exception policy (the only place it is decided):
- Redis or SQL unreachable, or Redis refusing writes for a while (full at
  ``maxmemory``, or a replica after a failover) (``OUTAGES``): log one warning,
  count ``outages``, wait with exponential backoff (0.5 s doubling up to
  ``skyline.retry_backoff_max``) and try again — a daemon never exits because a
  service went away.
- Any other exception from ``run_once``: a bug; log it with its traceback,
  count ``errors``, back off the same way and carry on, so one bad pass cannot
  take monitoring down, while the log and the counter make it visible.
- ``StartupError`` from ``setup`` (a port taken, a schema out of date): a
  problem only the operator can fix; log it, print it as one line on stderr
  and exit with status 1.
- ``SettingsError`` at start: print one line and exit with status 2.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import redis
import sqlalchemy.exc
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import Engine

from skyline.db.engine import DatabaseUnavailable, wait_for_db
from skyline.db.migrate import SchemaOutOfDate, check_current
from skyline.runtime import reload, systemd
from skyline.runtime.membership import Membership
from skyline.runtime.signal_flag import SignalFlag
from skyline.settings import Settings, SettingsError, load_settings
from skyline.store.connection import connect
from skyline.store.keys import RedisKeys
from skyline.store.memory import keep_freed_memory
from skyline.store.timeseries import TimeSeriesStore

OUTAGES: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.exceptions.OutOfMemoryError,  # maxmemory reached: writes refused until room is made
    redis.exceptions.ReadOnlyError,  # a replica (a failover demoted the master): writes refused
    # Redis Cluster: a failover in progress (slots unserved, or moving)
    redis.exceptions.ClusterError,  # CLUSTERDOWN, MASTERDOWN, retries exhausted
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,  # and MovedError: redirected after our retries
    redis.exceptions.SlotNotCoveredError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    ConnectionError,
)


class StartupError(RuntimeError):
    """A start-up problem retrying cannot fix; the message says what to change."""


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class Backoff:
    """Exponential backoff: 0.5 s, 1 s, 2 s ... capped; ``reset`` after a success."""

    def __init__(self, cap: float, first: float = 0.5) -> None:
        self.cap, self.first, self.current = cap, first, 0.0

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class Counters:
    """Per-interval counts and point-in-time gauges of one daemon (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, float] = {}
        self._gauges: dict[str, float] = {}

    def inc(self, name: str, n: float = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def peek(self) -> dict[str, float]:
        """Counts since the last ``take`` and gauges, without resetting."""
        with self._lock:
            return {**self._counts, **self._gauges}

    def take(self) -> dict[str, float]:
        """Counts since the last call (then reset) merged with the current gauges."""
        with self._lock:
            out = {**self._counts, **self._gauges}
            self._counts = {}
            return out


def log_formatter(settings: Settings) -> logging.Formatter:
    """``[skyline] log_format``: text lines, or JSON lines (python-json-logger)."""
    if settings.skyline.log_format == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"asctime": "time", "levelname": "level"},
        )
    return logging.Formatter(LOG_FORMAT)


def setup_logging(settings: Settings, name: str, stream: bool = False) -> Path:
    """Log to ``var_dir/log/<name>.log`` (WatchedFileHandler, so logrotate works) and/or
    stderr, as ``[skyline] log_to`` says; ``stream`` (--foreground) adds stderr."""
    log_dir = settings.var_path / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{name}.log"
    root = logging.getLogger()
    root.handlers.clear()
    formatter = log_formatter(settings)
    handlers: list[logging.Handler] = []
    if settings.skyline.log_to in ("file", "both"):
        handlers.append(logging.handlers.WatchedFileHandler(path))
    if stream or settings.skyline.log_to in ("stderr", "both"):
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.skyline.log_level)
    return path


class Daemon:
    """Subclass, set ``name``, implement ``run_once``; optionally ``setup`` and ``flush``."""

    name: ClassVar[str] = "daemon"

    def __init__(
        self,
        settings: Settings,
        *,
        redis_client: redis.Redis | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.log = logging.getLogger(f"skyline.{self.name}")
        # set by signal handlers: a threading.Event can deadlock there (signal_flag.py)
        self.stop_event = SignalFlag()
        self.reload_requested = SignalFlag()
        self.counters = Counters()
        self.keys = RedisKeys(settings.redis.prefix)
        self.redis = redis_client if redis_client is not None else connect(settings, patient=True)
        self.store = TimeSeriesStore(self.redis, self.keys)
        self.started = clock()
        self.runs = 0
        self.last_run_time = 0.0
        self._backoff = Backoff(settings.skyline.retry_backoff_max)
        self._last_publish = time.monotonic()
        self.membership = Membership(self.redis, self.keys, self.name, settings.host_name,
                                     self.member_lease, clock)  # fmt: skip

    # To be provided by subclasses ------------------------------------------------------
    @property
    def interval(self) -> float:
        section = getattr(self.settings, self.name, None)
        return float(getattr(section, "interval", 60.0))

    @property
    def member_lease(self) -> float:
        """How long this process stays a member after a renewal (``membership.py``)."""
        return self.settings.skyline.member_lease

    def member_info(self) -> dict[str, object]:
        """What this member shows beside it in ``skyline status`` (its share...)."""
        return {}

    def setup(self) -> None:
        """Called once before the loop (after Redis answers); may wait for SQL."""

    def run_once(self) -> None:
        raise NotImplementedError

    def open_database(self) -> Engine:
        """For ``setup``: wait until SQL answers, then require the current schema."""
        engine = wait_for_db(
            self.settings.database_url,
            backoff_max=self.settings.skyline.retry_backoff_max,
            stop=self.stop_event,
            log=self.log,
            connect_timeout=self.settings.database.connect_timeout,
            io_timeout=self.settings.database.io_timeout,
        )
        try:
            check_current(engine)
        except SchemaOutOfDate as exc:
            raise StartupError(str(exc)) from None
        return engine

    def flush(self) -> None:
        """Called once at stop: write out anything buffered."""

    # The loop ------------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    def reloaded(self) -> None:
        """Called after a SIGHUP changed ``self.settings``: rebuild what was derived
        from the rule tables at setup."""

    def _reload(self) -> None:
        self.reload_requested.clear()
        reload.reopen_logs()
        outcome = reload.reloaded(self.settings)
        if outcome is None:
            self.counters.inc("reload_failed")
            return
        self.settings, restart = outcome
        logging.getLogger().setLevel(self.settings.skyline.log_level)
        self.reloaded()
        self.counters.inc("reloads")
        self.log.info(
            "SIGHUP: reloaded %d alert, %d boundary and %d data_health rules, log level %s%s",
            len(self.settings.alerts), len(self.settings.boundary),
            len(self.settings.data_health), self.settings.skyline.log_level,
            f"; changed, applied at the next restart: {', '.join(restart)}" if restart else "",
        )  # fmt: skip

    def run(self) -> int:
        """Run until stopped; returns the process exit status."""
        self.log.info("starting (pid %d, interval %.1fs)", os.getpid(), self.interval)
        try:
            if not self._retry(self.setup, "setup"):
                return 0
        except StartupError as exc:
            self.log.error("cannot start: %s", exc)
            print(f"skyline {self.name}: {exc}", file=sys.stderr)
            return 1
        if not self._retry(self.renew_membership, "join"):
            return 0
        systemd.notify("READY=1")
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            if self.reload_requested.is_set():
                self._reload()
            if not self._retry(self._one_pass, "run"):
                break
            self.stop_event.wait(max(0.0, self.interval - (time.monotonic() - t0)))
        self._shutdown()
        return 0

    def _one_pass(self) -> None:
        t0 = time.monotonic()
        self.run_once()
        self.runs += 1
        self.last_run_time = time.monotonic() - t0
        self.heartbeat()
        self.renew_membership()
        if time.monotonic() - self._last_publish >= self.settings.skyline.counters_interval:
            self.publish_counters()

    def _retry(self, step: Callable[[], None], what: str) -> bool:
        """Run ``step`` until it succeeds (True) or the daemon is stopped (False)."""
        while not self.stop_event.is_set():
            try:
                step()
            except StartupError:
                raise
            except DatabaseUnavailable:  # wait_for_db gave up because we are stopping
                return False
            except OUTAGES as exc:
                self.counters.inc("outages")
                reconnect_if_replica(exc, self.redis)
                delay = self._backoff.next()
                self.log.warning(
                    "%s: service unavailable (%s); retrying in %.1fs", what, _one_line(exc), delay
                )
            except Exception:
                self.counters.inc("errors")
                delay = self._backoff.next()
                self.log.exception("%s failed; retrying in %.1fs", what, delay)
            else:
                self._backoff.reset()
                return True
            self.stop_event.wait(delay)
        return False

    def _shutdown(self) -> None:
        systemd.notify("STOPPING=1")
        self.log.info("stopping: flushing")
        try:
            self.leave()
            self.flush()
            self.publish_counters()
            self.redis.delete(self.keys.heartbeat(self.name))
        except OUTAGES as exc:
            self.log.warning("stop: could not flush everything (%s)", _one_line(exc))
        self.log.info("stopped after %d runs", self.runs)

    # Observability -----------------------------------------------------------------
    def heartbeat(self) -> None:
        beat = {
            "pid": os.getpid(),
            "host": self.settings.host_name,
            "started": self.started,
            "ts": self.clock(),
            "runs": self.runs,
            "run_time": round(self.last_run_time, 6),
        }
        self.redis.set(
            self.keys.heartbeat(self.name), json.dumps(beat), ex=self.settings.skyline.heartbeat_ttl
        )
        systemd.notify("WATCHDOG=1")  # alive as far as systemd knows: the heartbeat is written

    def leave(self) -> None:
        """At stop, before ``flush``: stop being a member of this daemon's kind, so
        the others take over its share at once (a subclass hands back what it holds)."""
        self.membership.leave()

    def renew_membership(self) -> None:
        self.membership.renew({"runs": self.runs, **self.member_info()})

    def metric_name(self, counter: str) -> str:
        return f"skyline.{self.name}.{self.settings.host_name}.{counter}"

    def publish_counters(self) -> None:
        """Store each counter as a datapoint of its own metric and in the counters hash."""
        self._last_publish = time.monotonic()
        values = self.counters.take()
        values["run_time"] = self.last_run_time
        now = self.clock()
        self.store.append_grouped(
            {self.metric_name(k): ([now], [float(v)]) for k, v in values.items()}
        )
        key = self.keys.counters(self.name)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={k: repr(float(v)) for k, v in values.items()})
        pipe.expire(key, 3 * self.settings.skyline.counters_interval)
        pipe.execute()


def reconnect_if_replica(exc: BaseException, client: object) -> None:
    """After a READONLY reply the client talks to a replica: a failover demoted the
    master it connected to (behind a name or address that now leads to the new one).
    Its pooled connections are dropped, so the next command connects anew."""
    pool = getattr(client, "connection_pool", None)  # a cluster client routes by itself
    if isinstance(exc, redis.exceptions.ReadOnlyError) and pool is not None:
        pool.disconnect()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def main(daemon_class: type[Daemon], argv: list[str] | None = None) -> int:
    """Entry point of ``python -m skyline.<daemon>``."""
    foreground = "--foreground" in (argv if argv is not None else sys.argv[1:])
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"skyline {daemon_class.name}: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    setup_logging(settings, daemon_class.name, stream=foreground)
    keep_freed_memory()
    daemon = daemon_class(settings)
    daemon.install_signal_handlers()
    try:
        return daemon.run()
    finally:
        _remove_own_pid_file(settings, daemon_class.name)


def _remove_own_pid_file(settings: Settings, name: str) -> None:
    pid_file = settings.pid_path(name)
    try:
        if int(pid_file.read_text().strip()) == os.getpid():
            pid_file.unlink()
    except (OSError, ValueError):
        return
