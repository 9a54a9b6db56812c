"""The web app factory: blueprints, login, CSRF, security headers, errors.

``create_app(ctx)`` is used by gunicorn's workers (``skyline.webapp.wsgi``) and by
the threaded server the daemon runs in tests.  Pages are server-rendered Jinja
templates (autoescaped); the graphs and the live Now list are drawn by
``static/app.js`` from the JSON API, with the vendored uPlot library (no CDN).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from skyline.runtime.daemon import OUTAGES
from skyline.webapp import auth, csrf, formats, users
from skyline.webapp.context import Context

log = logging.getLogger("skyline.webapp")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class IdConverter(IntegerConverter):
    """``<int:...>`` in routes: 1-18 ASCII digits (werkzeug's accepts any length, and a
    20-digit id overflows SQLite's INTEGER: a 500), so anything else is a 404."""

    regex = r"[0-9]{1,18}"


def create_app(ctx: Context) -> Flask:
    from skyline.webapp import (
        admin_pages,
        alert_pages,
        api,
        api_docs,
        api_profiles,
        grafana,
        graph_images,
        pages,
        profile_pages,
        self_metrics,
    )

    cfg = ctx.settings.webapp
    app = Flask("skyline.webapp", static_folder="static", template_folder="templates")
    app.config.update(
        SECRET_KEY=users.secret_key(ctx.settings),
        SESSION_COOKIE_NAME="skyline_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.cookie_secure,
        # the idle timeout is enforced by auth (session["seen"]); the cookie outlives it a
        # little so that an expired session can be told apart from no session
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=cfg.session_timeout + 3600),
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.extensions["skyline"] = ctx
    app.url_map.converters["int"] = IdConverter
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(profile_pages.bp)
    app.register_blueprint(api_profiles.bp)
    app.register_blueprint(grafana.bp)
    app.register_blueprint(admin_pages.bp)
    app.register_blueprint(alert_pages.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(graph_images.bp)
    app.before_request(auth.load_user)
    app.before_request(self_metrics.scrape)  # after load_user: a scrape is authenticated
    app.jinja_env.globals.update(csrf_token=csrf.token)
    app.jinja_env.filters.update(when=formats.when, ago=formats.ago, duration=formats.duration,
                                 count=formats.count, counter=formats.counter,
                                 when_text=formats.when_text)  # fmt: skip

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {"user": g.get("user"), "nav": request.endpoint or ""}

    @app.after_request
    def secure(resp: Response) -> Response:
        for name, value in HEADERS.items():
            resp.headers.setdefault(name, value)
        if cfg.cookie_secure:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint != "static":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        if auth.is_api():
            resp = jsonify(error=exc.description or exc.name, status=code, reason=exc.name)
            if code == 401:
                resp.headers["WWW-Authenticate"] = 'Bearer realm="skyline"'
            return resp, code
        return render_template("error.html", code=code, title=exc.name,
                               message=exc.description), code  # fmt: skip

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Any:
        if isinstance(exc, DataError):  # the request's data, not an outage (issue 15, 7)
            log.info("request %s %s: the database refused its data: %s", request.method,
                     request.path, " ".join(str(exc.orig).split())[:200])  # fmt: skip
            message = (
                "The database cannot use a value in this request (e.g. non-ASCII in a metric name)."
            )
            if auth.is_api():
                return jsonify(error=message, status=400, reason="bad_value"), 400
            return render_template("error.html", code=400, title="Bad request",
                                   message=message), 400  # fmt: skip
        if isinstance(exc, OUTAGES):
            log.warning("store unavailable: %s", str(exc)[:200])
            code, message = 503, "Redis or the database is unavailable; retry shortly."
        else:
            log.exception("request %s %s failed", request.method, request.path)
            code, message = 500, "Internal error; see the webapp log."
        if auth.is_api():
            return jsonify(
                error=message, status=code, reason="unavailable" if code == 503 else "internal"
            ), code
        return render_template("error.html", code=code, title="Error", message=message), code

    return app
