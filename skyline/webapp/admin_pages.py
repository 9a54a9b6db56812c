"""The Users and API tokens pages (admin only): create, disable and enable users, change
a role, rotate a password; create, revoke and rotate API tokens.  A new password or token
is shown once, in the answer to the form that made it (never in a cookie or a redirect),
and every change is written to the audit log (``audit``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, g, render_template, request, session

from skyline.db.models import ROLES
from skyline.webapp import audit, users
from skyline.webapp.auth import ctx, require
from skyline.webapp.users import UserError

bp = Blueprint("admin", __name__)


@dataclass(frozen=True)
class Secret:
    """A password or token shown once: what it is, and the value."""

    what: str
    value: str


def _audit(action: str, target: str, detail: str = "") -> None:
    audit.record(ctx().engine, g.user, action, target, detail, request.remote_addr)


def _action(*allowed: str) -> str:
    """The form's ``action``: one of ``allowed``, else 400 naming them."""
    action = request.form.get("action", "")
    if action not in allowed:
        abort(400, description=f"action must be one of: {', '.join(allowed)}")
    return action


def _users_page(secret: Secret | None = None, error: str = "", status: int = 200) -> Any:
    engine = ctx().engine
    return render_template("users.html", users=users.list_users(engine), roles=ROLES,
                           audit=audit.recent(engine), secret=secret, error=error), status  # fmt: skip


def _tokens_page(secret: Secret | None = None, error: str = "", status: int = 200) -> Any:
    engine = ctx().engine
    return render_template("tokens.html", tokens=users.all_tokens(engine),
                           users=users.list_users(engine), secret=secret, error=error), status  # fmt: skip


@bp.route("/users", methods=["GET", "POST"])
@require("admin")
def users_page() -> Any:
    """The list; a POST creates a user with a generated password."""
    if request.method == "GET":
        return _users_page()
    username = request.form.get("username", "")[:1024].strip()
    role = request.form.get("role", "viewer")
    password = users.random_password()
    try:
        users.add_user(ctx().engine, username, password, role)
    except UserError as exc:
        return _users_page(error=f"Could not create the user: {exc}.", status=400)
    _audit("user.create", username, f"role {role}")
    return _users_page(Secret(f"Password of the new user {username}", password))


@bp.route("/users/<int:user_id>", methods=["POST"])
@require("admin")
def change_user(user_id: int) -> Any:
    """One change to one user, named by the form's ``action``."""
    engine, action = ctx().engine, _action("disable", "enable", "role", "password")
    try:
        username = users.username_of(engine, user_id)
    except UserError as exc:
        return _users_page(error=f"Could not {action} the user: {exc}.", status=404)
    try:
        if action in ("disable", "role") and username == g.user.username:
            # the acting admin is enabled: so there is always an admin left to undo a change
            raise UserError("you cannot disable yourself or change your own role")
        if action == "password":
            return _rotate_password(username)
        if action == "role":
            role = request.form.get("role", "")
            users.set_role(engine, username, role)
            _audit("user.role", username, f"role {role}")
        else:
            users.set_disabled(engine, username, action == "disable")
            _audit(f"user.{action}", username)
    except UserError as exc:
        return _users_page(error=f"Could not {action} the user: {exc}.", status=400)
    return _users_page()


def _rotate_password(username: str) -> Any:
    engine, password = ctx().engine, users.random_password()
    users.set_password(engine, username, password)
    users.forget_admin_password(ctx().settings, username)
    _audit("user.password", username, "rotated; the user's sessions ended")
    if username == g.user.username:  # keep the admin who did it logged in
        me = users.authenticate(engine, username, password)
        assert me is not None
        session["stamp"] = me.stamp
    return _users_page(Secret(f"New password of {username}", password))


@bp.route("/tokens", methods=["GET", "POST"])
@require("admin")
def tokens_page() -> Any:
    """The list; a POST creates a token."""
    if request.method == "GET":
        return _tokens_page()
    owner = request.form.get("user", "")[:1024]
    try:
        name = users.valid_token_name(request.form.get("name", "")[:1024])
        token = users.create_token(ctx().engine, owner, name)
    except UserError as exc:
        return _tokens_page(error=f"Could not create the token: {exc}.", status=400)
    _audit("token.create", owner, f"token {name!r}")
    return _tokens_page(Secret(f"API token {name!r} of {owner}", token))


@bp.route("/tokens/<int:token_id>", methods=["POST"])
@require("admin")
def change_token(token_id: int) -> Any:
    """Revoke a token, or rotate it: a new token of the same user and name, the old revoked."""
    engine, action = ctx().engine, _action("revoke", "rotate")
    try:
        owner, name = users.token_owner(engine, token_id)
    except UserError as exc:
        return _tokens_page(error=f"Could not {action} the token: {exc}.", status=404)
    token = users.create_token(engine, owner, name) if action == "rotate" else None
    users.revoke_token(engine, owner, token_id)
    _audit(f"token.{action}", owner, f"token {token_id} {name!r}")
    return _tokens_page(Secret(f"New API token {name!r} of {owner}", token) if token else None)
