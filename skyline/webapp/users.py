"""Users, passwords, API tokens and the session-signing key (no Flask in here).

Passwords are hashed with scrypt (``werkzeug.security``); API tokens are random
(256 bits) and stored only as their SHA-256, so a stolen database reveals neither.
Used by the web app and by ``skyline users ...``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from skyline.db.models import ROLES, ApiToken, User
from skyline.settings import Settings

TOKEN_PREFIX = "skyt_"
MIN_PASSWORD = 10
_DUMMY_HASH = generate_password_hash("not a password", method="scrypt")
TOKEN_TOUCH_EVERY = 60  # seconds between updates of a token's last_used_at


class UserError(ValueError):
    """A user operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the user, and the token if one was used."""

    id: int
    username: str
    role: str
    token_id: int | None = None
    stamp: str = ""  # changes with the password: a password change ends old sessions

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return generate_password_hash(password, method="scrypt")


def random_password() -> str:
    return secrets.token_urlsafe(15)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")


def valid_username(username: str) -> bool:
    """1 to 64 printable characters, no whitespace."""
    return (
        0 < len(username) <= 64
        and username.isprintable()
        and not any(c.isspace() for c in username)
    )


def login_name(raw: str) -> str:
    """A user name as typed, normalised once at the edge (the login form): surrounding
    whitespace removed.  MariaDB compares ignoring trailing spaces, so without this
    'oper1 ' would be another name to the login throttle but the same user to SQL."""
    return raw[:1024].strip()[:65]


def add_user(engine: Engine, username: str, password: str, role: str = "viewer") -> int:
    _check_role(role)
    if not valid_username(username):
        raise UserError("a user name is 1 to 64 printable characters without spaces")
    with Session(engine) as db:
        user = User(username=username, password_hash=hash_password(password), role=role)
        db.add(user)
        try:
            db.commit()
        except IntegrityError:
            raise UserError(f"user {username!r} exists already") from None
        return user.id


def _user(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user named {username!r}")
    return user


def set_password(engine: Engine, username: str, password: str) -> None:
    with Session(engine) as db:
        _user(db, username).password_hash = hash_password(password)
        db.commit()


def set_role(engine: Engine, username: str, role: str) -> None:
    _check_role(role)
    with Session(engine) as db:
        _user(db, username).role = role
        db.commit()


def set_disabled(engine: Engine, username: str, disabled: bool) -> None:
    with Session(engine) as db:
        _user(db, username).disabled = disabled
        db.commit()


def list_users(engine: Engine) -> list[dict[str, object]]:
    with Session(engine) as db:
        tokens = dict(
            db.execute(
                select(ApiToken.user_id, func.count())
                .where(ApiToken.revoked_at.is_(None))
                .group_by(ApiToken.user_id)
            ).all()
        )
        return [
            {"id": u.id, "username": u.username, "role": u.role, "disabled": u.disabled,
             "created_at": u.created_at, "tokens": tokens.get(u.id, 0)}
            for u in db.scalars(select(User).order_by(User.username))
        ]  # fmt: skip


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def authenticate(engine: Engine, username: str, password: str) -> Principal | None:
    """The user if the password is right and the account enabled (constant work either way).

    Only the exact name logs in: a database collation that ignores trailing spaces or
    case must not let another string (another login-throttle key) reach the account."""
    with Session(engine) as db:
        user = db.scalar(select(User).where(User.username == username))
        if user is None or user.username != username:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password) or user.disabled:
            return None
        return Principal(user.id, user.username, user.role, stamp=_stamp(user.password_hash))


def principal(engine: Engine, user_id: int, stamp: str) -> Principal | None:
    """The session's user, if still enabled and with the password the session began with."""
    with Session(engine) as db:
        user = db.get(User, user_id)
        if user is None or user.disabled or _stamp(user.password_hash) != stamp:
            return None
        return Principal(user.id, user.username, user.role, stamp=stamp)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, username: str, name: str) -> str:
    """A new API token for ``username``; the only time the token itself is seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as db:
        user = _user(db, username)
        db.add(ApiToken(user_id=user.id, name=name[:255], token_hash=_token_hash(token)))
        db.commit()
    return token


def list_tokens(engine: Engine, username: str) -> list[dict[str, object]]:
    with Session(engine) as db:
        user = _user(db, username)
        rows = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
        return [
            {"id": t.id, "name": t.name, "created_at": t.created_at,
             "last_used_at": t.last_used_at, "revoked": t.revoked_at is not None}
            for t in rows
        ]  # fmt: skip


def revoke_token(engine: Engine, username: str, token_id: int) -> bool:
    with Session(engine) as db:
        user = _user(db, username)
        token = db.scalar(
            select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
        )
        if token is None or token.revoked_at is not None:
            return False
        token.revoked_at = int(time.time())
        db.commit()
        return True


def token_principal(engine: Engine, token: str) -> Principal | None:
    """The user owning a valid (not revoked) token, its account enabled."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with Session(engine) as db:
        row = db.execute(
            select(ApiToken, User)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
        ).first()
        if row is None or row[1].disabled:
            return None
        api_token, user = row
        now = int(time.time())
        if (api_token.last_used_at or 0) < now - TOKEN_TOUCH_EVERY:
            api_token.last_used_at = now
            db.commit()
        return Principal(user.id, user.username, user.role, api_token.id)


def username_of(engine: Engine, user_id: int) -> str:
    with Session(engine) as db:
        user = db.get(User, user_id)
        if user is None:
            raise UserError(f"no user with id {user_id}")
        return user.username


def valid_token_name(name: str) -> str:
    """What a token is for: 1 to 255 printable characters."""
    name = name.strip()
    if not 0 < len(name) <= 255 or not name.isprintable():
        raise UserError("a token name is 1 to 255 printable characters (what it is for)")
    return name


def all_tokens(engine: Engine) -> list[dict[str, object]]:
    """Every token of every user, active ones first, newest first."""
    with Session(engine) as db:
        rows = db.execute(
            select(ApiToken, User.username)
            .join(User, ApiToken.user_id == User.id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        ).all()
        return [
            {"id": t.id, "user": name, "name": t.name, "created_at": t.created_at,
             "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}
            for t, name in rows
        ]  # fmt: skip


def token_owner(engine: Engine, token_id: int) -> tuple[str, str]:
    """(user name, token name) of an active token."""
    with Session(engine) as db:
        row = db.execute(
            select(User.username, ApiToken.name)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        ).first()
    if row is None:
        raise UserError(f"no active token with id {token_id}")
    return row[0], row[1]


# First start --------------------------------------------------------------------------
def admin_password_file(settings: Settings) -> Path:
    return settings.var_path / "webapp" / "admin-password"


def ensure_admin(engine: Engine, settings: Settings) -> str | None:
    """With no users yet, create the administrator; returns a generated password (else None).

    The password is ``[webapp] admin_password`` if set; otherwise a random one, which
    is also kept (mode 0600) in ``admin_password_file`` until it is changed.
    """
    with Session(engine) as db:
        if db.scalar(select(func.count()).select_from(User)):
            return None
    configured = settings.webapp.admin_password.get_secret_value()
    password = configured or random_password()
    try:
        add_user(engine, settings.webapp.admin_user, password, "admin")
    except UserError:
        if not valid_username(settings.webapp.admin_user):
            raise  # a name no user can have: say so, not "created meanwhile"
        return None  # created meanwhile by another process
    if configured:
        return None
    _write_private(admin_password_file(settings), password + "\n")
    return password


def forget_admin_password(settings: Settings, username: str) -> None:
    """After a password change of the first administrator, remove the kept password."""
    if username == settings.webapp.admin_user:
        admin_password_file(settings).unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def secret_key(settings: Settings) -> bytes:
    """The session-signing key, created (0600) on first use; shared by every worker."""
    path = Path(settings.webapp.secret_key_file or settings.var_path / "webapp" / "secret_key")
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race
        time.sleep(0.1)
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())
