"""CSRF protection: a random token kept in the (signed) session, required on every
state-changing request made with a session cookie: as the form field ``csrf_token``
or the header ``X-CSRF-Token``.  Requests authenticated by an API token carry no
cookie an attacker's page could ride on, so they need none."""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def token() -> str:
    """The session's token (created on first use); templates call ``csrf_token()``."""
    value = session.get("csrf")
    if not value:
        value = session["csrf"] = secrets.token_urlsafe(32)
    return value


def rotate() -> None:
    session["csrf"] = secrets.token_urlsafe(32)


def check() -> None:
    """Refuse (403) an unsafe request whose token is missing or wrong."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get("csrf")
    sent = request.headers.get(HEADER) or request.form.get(FIELD) or ""
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500)
    if not expected or not hmac.compare_digest(_bytes(expected), _bytes(sent)):
        abort(403, description="missing or invalid CSRF token; reload the page and try again")


def _bytes(token: object) -> bytes:
    return str(token).encode("utf-8", "surrogatepass")
