"""The [webapp] section: the web UI and REST API."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from skyline.settings.base import ListenerSection, Port, key


class WebappSection(ListenerSection):
    """The web UI and REST API."""

    port: Port = key(
        1500, "HTTP port of the web UI and REST API (/api/v1).", "port", ge=1, le=65535
    )
    http_server: Literal["gunicorn", "threaded"] = key(
        "gunicorn",
        "What serves the web UI: gunicorn worker processes (production) or a threaded "
        "server inside the daemon (tests, development).",
    )
    workers: int = key(2, "gunicorn worker processes.", "", ge=1, le=64)
    threads: int = key(4, "Threads per gunicorn worker (gthread).", "", ge=1, le=64)
    url: str = key(
        "",
        "Address users reach the web UI at (behind a proxy, e.g. https://skyline.example.com); "
        "empty means http://<bind>:<port>. Used in links printed by the command line.",
    )
    secret_key_file: str = key(
        "",
        "File holding the key that signs session cookies; created (mode 0600) with a random "
        "key if missing. Empty means var_dir/webapp/secret_key.",
        "path",
    )
    session_timeout: int = key(
        3600, "A login session ends after this long without a request.", "s", ge=60
    )
    cookie_secure: bool = key(
        False, "Send the session cookie only over HTTPS (set true behind a TLS proxy)."
    )
    admin_user: str = key(
        "admin",
        "Name of the administrator created at first start when there are no users "
        "(1 to 64 printable characters, no whitespace).",
        pattern=r"^[^\s]{1,64}$",
    )
    admin_password: SecretStr = key(
        SecretStr(""),
        "Password of that first administrator; empty generates a random one, printed once "
        "and kept in var_dir/webapp/admin-password until changed. Secret.",
    )
    login_max_failures: int = key(
        5,
        "Failed logins of one user name allowed per login_window (4 times as many per "
        "client address); past it, logins get 429 until the window ends.",
        "",
        ge=1,
    )
    login_window: int = key(300, "Window of login_max_failures, from the first failure.", "s", ge=1)
    page_size: int = key(50, "Rows per page in the anomaly lists and the API.", "", ge=1, le=1000)
    now_hours: int = key(6, "How many hours back the Now page looks.", "h", ge=1, le=720)
    graph_window: int = key(
        21600, "How much of a metric's history the graphs show around an anomaly.", "s", ge=600
    )
