"""flux API keys: generated, hashed, stored in SQL, cached by every HTTP worker.

A key is 32 random characters from [A-Za-z0-9] (about 190 bits, the format
earthgecko Skyline's FLUX_API_KEYS use, so existing clients keep their keys).
Only ``HMAC-SHA256("skyline-flux-key-v1", key)`` is stored.  A slow password hash
(bcrypt, scrypt) protects low-entropy secrets that people choose; a random
190-bit key cannot be guessed, so one fast keyed hash is enough, and unlike a
salted slow hash it is deterministic, so the stored hash is a unique index that
one request looks up in O(1) instead of trying every stored salt.  Anyone who
reads the table learns namespaces, never a usable key.  Keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skyline.db.models import FluxKey
from skyline.store.datapoint import check_name

KEY_RE = re.compile(r"[A-Za-z0-9]{32}")
_ALPHABET = string.ascii_letters + string.digits
_DOMAIN = b"skyline-flux-key-v1"
MISSING_RELOAD_EVERY = 1.0  # an unknown key reloads the table at most this often


class KeyError_(ValueError):
    """A key or namespace that cannot be stored; the message says why."""


@dataclass(frozen=True)
class KeyInfo:
    id: int
    namespace: str
    description: str
    created_at: int
    revoked_at: int | None


def generate_key() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def hash_key(key: str) -> str:
    return "hmac-sha256:" + hmac.new(_DOMAIN, key.encode(), hashlib.sha256).hexdigest()


def check_namespace(namespace: str) -> None:
    if namespace and check_name(namespace) is not None:
        raise KeyError_(
            f"namespace {namespace!r} is not a valid metric name prefix "
            "(letters, digits and + - % . _ / = :)"
        )


def add_key(
    engine: Engine, namespace: str, description: str = "", key: str | None = None
) -> tuple[int, str]:
    """Store a new key (or import an existing 32-char key); returns (id, key), shown once."""
    check_namespace(namespace)
    key = key if key is not None else generate_key()
    if not KEY_RE.fullmatch(key):
        raise KeyError_("a key must be exactly 32 characters from A-Z, a-z and 0-9")
    with Session(engine) as session, session.begin():
        exists = session.scalar(select(FluxKey.id).where(FluxKey.key_hash == hash_key(key)))
        if exists is not None:
            raise KeyError_(f"that key is already stored (id {exists})")
        row = FluxKey(key_hash=hash_key(key), namespace=namespace, description=description)
        session.add(row)
        session.flush()
        key_id = row.id
    return key_id, key


def list_keys(engine: Engine) -> list[KeyInfo]:
    with Session(engine) as session:
        rows = session.scalars(select(FluxKey).order_by(FluxKey.id)).all()
        return [KeyInfo(r.id, r.namespace, r.description, r.created_at, r.revoked_at) for r in rows]


def revoke_key(engine: Engine, key_id: int) -> bool:
    """Revoke by id; False if there is no such key or it was revoked already."""
    with Session(engine) as session, session.begin():
        row = session.get(FluxKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = int(time.time())
    return True


class KeyRing:
    """A worker's cached map of key hash -> (key id, namespace), reloaded every ``ttl``.

    If SQL is unreachable the last good copy is kept; before the first load
    ``lookup`` raises the outage (the request is answered 503).
    """

    def __init__(self, engine: Engine | None, ttl: float) -> None:
        self.engine = engine
        self.ttl = ttl
        self._keys: dict[str, tuple[int, str]] | None = None
        self._loaded = 0.0
        self._missing_reload = 0.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        assert self.engine is not None
        with Session(self.engine) as session:
            rows = session.execute(
                select(FluxKey.id, FluxKey.key_hash, FluxKey.namespace).where(
                    FluxKey.revoked_at.is_(None)
                )
            ).all()
        self._keys = {h: (i, ns) for i, h, ns in rows}
        self._loaded = time.monotonic()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._keys is not None and now - self._loaded < self.ttl:
            return
        with self._lock:
            try:
                self._load()
            except Exception:
                if self._keys is None:
                    raise
                self._loaded = now  # keep the last good copy; try again after ttl

    def lookup(self, key: str) -> tuple[int, str] | None:
        """(key id, namespace) of a valid, unrevoked key, else None."""
        if self.engine is None or not KEY_RE.fullmatch(key):
            return None
        self._refresh()
        digest = hash_key(key)
        assert self._keys is not None
        found = self._keys.get(digest)
        now = time.monotonic()
        if found is None and now - self._missing_reload >= MISSING_RELOAD_EVERY:
            self._missing_reload = now  # a key added a moment ago works at once
            self._refresh(force=True)
            found = self._keys.get(digest)
        return found
