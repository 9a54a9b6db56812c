"""Serving the web app: the daemon binds the port, gunicorn or a threaded server serves.

Binding in the daemon makes a taken port one line naming ``[webapp] port``; the
listening socket is handed to gunicorn as ``fd://N`` (workers import
``skyline.webapp.wsgi``) or served by werkzeug's threaded server (tests).
"""

from __future__ import annotations

import logging
import socket

from skyline.runtime.http_serving import (
    GunicornOptions,
    GunicornServer,
    ThreadedServer,
    bind_listener,
)
from skyline.settings import Settings
from skyline.webapp.app import create_app
from skyline.webapp.context import Context

log = logging.getLogger("skyline.webapp")


def bind(host: str, port: int) -> socket.socket:
    return bind_listener(host, port, socket.SOCK_STREAM, "webapp", "port")


def threaded_server(ctx: Context, sock: socket.socket) -> ThreadedServer:
    return ThreadedServer(create_app(ctx), sock, "webapp-http")


def gunicorn_server(settings: Settings, sock: socket.socket) -> GunicornServer:
    cfg = settings.webapp
    return GunicornServer(sock, GunicornOptions(
        app="skyline.webapp.wsgi:app", name="skyline-webapp", workers=cfg.workers,
        threads=cfg.threads, error_log=settings.var_path / "log" / "webapp-gunicorn.log",
        timeout=60, graceful_timeout=3, keep_alive=5,
    ))  # fmt: skip
