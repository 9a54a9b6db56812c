"""Who is asking: session login for people, API tokens for programs, and roles.

``before_request`` (installed by the app factory) sets ``g.user``:
- ``/api/...`` and a Prometheus scrape of ``/metrics`` (``is_scrape``): an ``Authorization: Bearer <token>`` header (a token of ``skyline
  users token``), else the browser's login session; neither is a JSON 401;
- ``/graphs/<token>.png`` (an alert's graph; the token is the permission), ``/health``,
  ``/login``, static files and the OpenAPI document need nothing;
- any other page needs a login session; without one the browser is sent to
  ``/login``.  A session ends after ``[webapp] session_timeout`` without a
  request (polling by an open page does not count), at logout, and when the
  user's password changes or the account is disabled.
Roles: viewer (read), operator (also label and mute), admin (everything).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.datastructures import Authorization

from skyline.webapp import csrf, users
from skyline.webapp.context import Context
from skyline.webapp.throttle import LoginThrottle

bp = Blueprint("auth", __name__)
# no login: the login form, static files, the health check, the API document and the
# alert graphs shared by capability link (graph_images)
PUBLIC_ENDPOINTS = {"auth.login", "static", "pages.health", "api.openapi_document",
                    "graph_images.graph"}  # fmt: skip
POLL_HEADER = "X-Skyline-Poll"
F = TypeVar("F", bound=Callable[..., Any])


def ctx() -> Context:
    return current_app.extensions["skyline"]


def is_api() -> bool:
    """Requests from programs: token auth, JSON errors (``/api/docs`` is a page: its
    visitors log in)."""
    api = request.path.startswith("/api/") and request.path != "/api/docs"
    return api or is_scrape()


SCRAPE_PATH = "/metrics"
EXPOSITION_TYPES = ("application/openmetrics-text", "text/plain")


def is_scrape() -> bool:
    """``GET /metrics`` from Prometheus (or with an API token) rather than a browser
    opening the Metrics page: a bearer token, or an Accept header preferring the
    exposition formats to HTML (Prometheus sends ``application/openmetrics-text...,
    text/plain;version=0.0.4;q=0.4,*/*;q=0.1``)."""
    if request.path != SCRAPE_PATH or request.method not in ("GET", "HEAD"):
        return False
    if _bearer() is not None:
        return True
    return _quality(EXPOSITION_TYPES) > _quality(("text/html",))


def _quality(kinds: tuple[str, ...]) -> float:
    """The Accept header's quality for these types, their parameters (``version=``) ignored
    (werkzeug's matching would not ignore them) and wildcards not counted."""
    accept = request.accept_mimetypes
    return max((q for v, q in accept if v.split(";")[0].strip() in kinds), default=0.0)


def authorization() -> Authorization | None:
    """The request's ``Authorization`` header, parsed; None when it is absent or cannot
    be parsed (werkzeug raises ``ValueError`` for a Basic one that is not UTF-8), so a
    malformed header is a missing one (a 401 where one is needed), never a 500."""
    try:
        return request.authorization
    except ValueError:
        return None


def _bearer() -> str | None:
    auth = authorization()
    if auth is not None and auth.type == "bearer" and auth.token:
        return auth.token
    return None


def _session_user() -> users.Principal | None:
    uid, stamp, seen = session.get("uid"), session.get("stamp"), session.get("seen", 0)
    if not isinstance(uid, int) or not isinstance(stamp, str):
        return None
    now = time.time()
    if now - float(seen) > ctx().settings.webapp.session_timeout:
        session.clear()
        g.session_expired = True
        return None
    user = users.principal(ctx().engine, uid, stamp)
    if user is None:
        session.clear()
        return None
    if not request.headers.get(POLL_HEADER):
        session["seen"] = now
    return user


def load_user() -> Any:
    """The before_request hook: authenticate, then check CSRF for cookie sessions."""
    g.user = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.endpoint == "auth.login":
            csrf.check()
        return None
    token = _bearer() if is_api() else None
    if token is not None:
        g.user = users.token_principal(ctx().engine, token)
        if g.user is None:
            abort(401, description="invalid or revoked API token")
        return None
    g.user = _session_user()
    if g.user is None:
        if is_api():
            abort(401, description="authentication required: send 'Authorization: Bearer <token>'")
        expired = 1 if getattr(g, "session_expired", False) else None
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?"), expired=expired))
    csrf.check()
    return None


def require(role: str) -> Callable[[F], F]:
    """Decorator: the user needs at least ``role``."""

    def wrap(view: F) -> F:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if g.user is None or not g.user.can(role):
                abort(403, description=f"this needs the {role} role")
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never //host or a scheme), else the Now page."""
    if not target:
        return url_for("pages.now")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.now")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error, status, headers = None, 200, {}
    if request.method == "POST":
        username = users.login_name(request.form.get("username", ""))
        password = request.form.get("password", "")[:1024]
        address = request.remote_addr or "unknown"
        throttle = _throttle()
        wait = throttle.attempt(username, address)
        if wait:
            error, status = f"Too many failed logins: try again in {wait} s.", 429
            headers["Retry-After"] = str(wait)
        elif (user := users.authenticate(ctx().engine, username, password)) is not None:
            throttle.succeeded(username, address)
            session.clear()  # no session fixation: a fresh session and CSRF token
            session.permanent = True
            session.update(uid=user.id, stamp=user.stamp, seen=time.time())
            csrf.rotate()
            return redirect(_safe_next(request.form.get("next")))
        else:
            error, status = "Wrong user name or password.", 401
    expired = request.args.get("expired") or getattr(g, "session_expired", False)
    return (
        render_template(
            "login.html", error=error, next=request.values.get("next", ""), expired=expired
        ),
        status,
        headers,
    )


def _throttle() -> LoginThrottle:
    c = ctx()
    cfg = c.settings.webapp
    return LoginThrottle(c.redis, c.keys, cfg.login_max_failures, cfg.login_window)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
