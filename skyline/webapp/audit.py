"""The audit log: every change made in the webapp to users, API tokens and alert
channels (a test alert), and by ``skyline users`` to users and tokens, one
``audit_log`` row each: who, what, to what, from where.

A row never holds a password or a token, only what was done with one.  The Users page
shows the newest rows; ``recent`` reads them.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skyline.db.models import AuditEntry
from skyline.webapp.users import Principal

log = logging.getLogger("skyline.webapp.audit")


def record(engine: Engine, actor: Principal | str, action: str, target: str, detail: str = "",
           address: str | None = None) -> None:  # fmt: skip
    """Keep one change; also logged (one line), so a log shipper sees it too.  ``actor``
    is the webapp's user, or a name for a change made elsewhere (``cli:root``)."""
    actor_id, name = (None, actor) if isinstance(actor, str) else (actor.id, actor.username)
    with Session(engine) as db:
        db.add(AuditEntry(actor_id=actor_id, actor=name[:64], action=action[:64],
                          target=target[:255], detail=detail[:2000] or None,
                          address=(address or "")[:64] or None))  # fmt: skip
        db.commit()
    log.info("audit: %s %s %s%s", name, action, target[:255],
             f" ({detail[:200]})" if detail else "")  # fmt: skip


def recent(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest changes first."""
    with Session(engine) as db:
        rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
        return [
            {"at": r.created_at, "actor": r.actor, "action": r.action, "target": r.target,
             "detail": r.detail or "", "address": r.address or ""}
            for r in rows
        ]  # fmt: skip
