"""The webapp daemon: UI and REST API on ``[webapp] bind:port`` (default 127.0.0.1:1500).

``setup`` waits for SQL, creates the first administrator if there are no users
(its generated password is printed once, and kept in ``var/webapp/admin-password``
until changed), makes sure the session key exists, binds the port and starts
gunicorn (or the threaded server).  ``run_once`` keeps the server alive; the
heartbeat and counters come from the Daemon base.
"""

from __future__ import annotations

from skyline.runtime.daemon import Daemon
from skyline.runtime.http_serving import GunicornServer, ThreadedServer
from skyline.webapp import users
from skyline.webapp.context import Context
from skyline.webapp.server import bind, gunicorn_server, threaded_server


class Webapp(Daemon):
    name = "webapp"
    interval = 2.0

    def setup(self) -> None:
        cfg = self.settings.webapp
        engine = self.open_database()
        password = users.ensure_admin(engine, self.settings)
        if password:
            path = users.admin_password_file(self.settings)
            print(
                f"skyline webapp: created user {cfg.admin_user!r} (admin) with password "
                f"{password} (kept in {path} until changed: skyline users passwd {cfg.admin_user})",
                flush=True,
            )
            self.log.info(
                "created the first administrator %r; password in %s", cfg.admin_user, path
            )
        users.secret_key(self.settings)
        sock = bind(cfg.bind, cfg.port)
        self.port = sock.getsockname()[1]
        self.ctx = Context(self.settings, engine, self.redis, self.keys, self.store)
        self.http: GunicornServer | ThreadedServer
        if cfg.http_server == "gunicorn":
            self.http = gunicorn_server(self.settings, sock)
        else:
            self.http = threaded_server(self.ctx, sock)
        self.http.start()
        self._sock = sock
        self.log.info("listening on http://%s:%d/ (%s)", cfg.bind, self.port, cfg.http_server)

    def run_once(self) -> None:
        if not self.http.check():
            self.counters.inc("http_server_restarts")

    def flush(self) -> None:
        if hasattr(self, "http"):
            self.http.stop()
            self._sock.close()
