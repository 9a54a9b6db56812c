"""Reads behind the pages and the API: anomalies with filters, one anomaly's story,
metric series, daemon status.  SQL only through SQLAlchemy expressions (user input
is always a bound parameter, never part of the SQL text)."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from skyline.db.models import (
    LABELS,
    AlertLog,
    Anomaly,
    Correlation,
    FeaturesProfile,
    Label,
    Metric,
    ProfileMatch,
    User,
)
from skyline.events.anomaly import verdict_text
from skyline.events.panorama.trail import delivery_failures
from skyline.runtime.daemons import built
from skyline.runtime.membership import member_rows
from skyline.webapp.context import Context
from skyline.webapp.thinning import extremes

MAX_PAGE_SIZE = 1000
MAX_POINTS = 5000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# ASCII digits only ('²'.isdigit() and '٣'.isdigit() are true), and few enough of them
# that the number fits every database's BIGINT and Python's int-from-string limit.
WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z


def whole_number(value: object) -> int | None:
    """``value`` as an int if it is 1-18 ASCII digits, else None."""
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value):
        return int(value)
    return None


class BadFilter(ValueError):
    """A filter value that cannot be understood; the message names it."""


def parse_time(value: str | None, name: str, now: float | None = None) -> int | None:
    """Epoch seconds, an ISO date/time (UTC unless it says; the pages' own format,
    ``2026-12-06 17:39:07 UTC``, too), or an age such as ``6h``."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    now = time.time() if now is None else now
    bad = BadFilter(f"{name}: {value[:40]!r} is not epoch seconds, an ISO date or an age like 6h")
    epoch = whole_number(value)
    age = whole_number(value[:-1]) if value[-1] in _UNITS else None
    if epoch is not None:
        ts = epoch
    elif age is not None:
        ts = max(0, int(now - age * _UNITS[value[-1]]))
    else:
        try:
            parsed = datetime.fromisoformat(value.removesuffix(" UTC"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ts = int(parsed.timestamp())
        except (ValueError, OverflowError):
            raise bad from None
    if not 0 <= ts <= MAX_TIME:
        raise BadFilter(f"{name}: {value[:40]!r} is outside 1970-01-01 to 9999-12-31")
    return ts


def like_pattern(glob: str) -> str:
    """A shell-style pattern (``*``, ``?``) as a LIKE pattern, ``%``/``_``/``\\`` escaped;
    a pattern without wildcards matches anywhere in the name."""
    out = []
    for ch in glob:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    text = "".join(out)
    return text if any(c in glob for c in "*?") else f"%{text}%"


@dataclass
class Filters:
    metric: str = ""
    since: int | None = None
    until: int | None = None
    source: str = ""
    verdict: str = ""
    label: str = ""  # true_positive | false_positive | none | ""
    after_id: int = 0
    before: tuple[int, int] | None = None  # keyset paging: (timestamp, id) of the last row seen
    page: int = 1
    per_page: int = 50
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Any, per_page: int) -> Filters:
        f = cls(per_page=per_page)
        f.metric = (args.get("metric") or "")[:1024]
        f.source = (args.get("daemon") or args.get("source") or "")[:32]
        f.verdict = (args.get("verdict") or "")[:32]
        f.label = (args.get("label") or "")[:32]
        if f.label and f.label not in (*LABELS, "none"):
            f.errors.append(f"label: one of {', '.join((*LABELS, 'none'))}")
            f.label = ""
        for name in ("since", "until"):
            try:
                setattr(f, name, parse_time(args.get(name), name))
            except BadFilter as exc:
                f.errors.append(str(exc))
        f.after_id = _positive(args.get("after_id"), 0, "after_id", f.errors, 2**62, low=0)
        f.before = _cursor(args.get("before"), f.errors)
        f.page = _positive(args.get("page"), 1, "page", f.errors, 10**6)
        f.per_page = _positive(args.get("per_page"), per_page, "per_page", f.errors, MAX_PAGE_SIZE)
        return f


def _cursor(value: str | None, errors: list[str]) -> tuple[int, int] | None:
    if not value:
        return None
    ts, _, anomaly_id = value.partition(":")
    pair = whole_number(ts), whole_number(anomaly_id)
    if pair[0] is None or pair[1] is None:
        errors.append("before: TIMESTAMP:ID of the last row seen (the pager's links)")
        return None
    return pair[0], pair[1]


def last_page(page: int, total: int, per_page: int) -> int:
    """The number of pages; BadFilter when ``page`` is past the last one."""
    pages = max(1, -(-total // per_page))
    if page > pages:
        raise BadFilter(f"page: {page} is past the last page ({pages})")
    return pages


def _positive(
    value: str | None, default: int, name: str, errors: list[str], cap: int, low: int = 1
) -> int:
    if value in (None, ""):
        return default
    number = whole_number(value)
    if number is None or number < low:
        errors.append(f"{name}: a whole number from {low}")
        return default
    return min(number, cap)


def _latest_labels() -> Any:
    newest = select(func.max(Label.id).label("id")).group_by(Label.anomaly_id).subquery()
    return select(Label.anomaly_id, Label.label).join(newest, Label.id == newest.c.id).subquery()


def _conditions(f: Filters) -> list[Any]:
    """The filters as conditions on ``anomalies`` alone (subqueries for the metric name
    and the label), so that counting and paging need no join."""
    cond: list[Any] = []
    if f.metric:
        names = select(Metric.id).where(Metric.name.like(like_pattern(f.metric), escape="\\"))
        cond.append(Anomaly.metric_id.in_(names))
    if f.since is not None:
        cond.append(Anomaly.timestamp >= f.since)
    if f.until is not None:
        cond.append(Anomaly.timestamp <= f.until)
    if f.source:
        cond.append(Anomaly.source == f.source)
    if f.after_id:
        cond.append(Anomaly.id > f.after_id)
    if f.verdict:
        cond.append(Anomaly.verdict == f.verdict)
    if f.label == "none":
        cond.append(~select(Label.id).where(Label.anomaly_id == Anomaly.id).exists())
    elif f.label:
        latest = _latest_labels()
        cond.append(Anomaly.id.in_(select(latest.c.anomaly_id).where(latest.c.label == f.label)))
    return cond


def _older_than(before: tuple[int, int]) -> Any:
    """Keyset paging: rows after (timestamp, id) in newest-first order."""
    ts, anomaly_id = before
    # the first term lets the database range-scan the timestamp index
    return and_(Anomaly.timestamp <= ts, or_(Anomaly.timestamp < ts, Anomaly.id < anomaly_id))


def _page_rows(db: Session, cond: list[Any], limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """The page's ids first (an offset walks only the timestamp index, not joined
    rows), then those rows with their metric names, labels and failed deliveries."""
    newest_first = (Anomaly.timestamp.desc(), Anomaly.id.desc())
    ids = list(db.scalars(
        select(Anomaly.id).where(*cond).order_by(*newest_first).limit(limit).offset(offset)
    ))  # fmt: skip
    rows = db.execute(
        select(Anomaly, Metric.name)
        .join(Metric, Anomaly.metric_id == Metric.id)
        .where(Anomaly.id.in_(ids))
        .order_by(*newest_first)
    ).all() if ids else []  # fmt: skip
    newest_last = select(Label.anomaly_id, Label.label).where(Label.anomaly_id.in_(ids))
    labels = {i: label for i, label in db.execute(newest_last.order_by(Label.id))} if ids else {}
    failed = delivery_failures(db, ids)
    return [anomaly_dict(a, name, labels.get(a.id), failed.get(a.id)) for a, name in rows]


def anomaly_dict(a: Anomaly, metric: str, label: str | None,
                 failed: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """``failed_channels``: channels whose delivery failed (``verdict_text`` then reads
    ``alerted (slack failed)``)."""
    return {
        "id": a.id, "event_id": a.event_id, "metric": metric, "timestamp": a.timestamp,
        "value": _finite(a.value), "source": a.source, "host": a.host,
        "triggered_algorithms": list(a.triggered_algorithms or []),
        "algorithms_run": list(a.algorithms_run or []),
        "scores": {k: _finite(v) for k, v in (a.scores or {}).items()},
        "verdict": a.verdict, "label": label, "full_duration": a.full_duration,
        "created_at": a.created_at, "failed_channels": failed or [],
        "verdict_text": verdict_text(a.verdict, failed or []),
    }  # fmt: skip


def _finite(v: Any) -> Any:
    return v if not isinstance(v, float) or math.isfinite(v) else None


def list_anomalies(ctx: Context, f: Filters) -> tuple[list[dict[str, Any]], int]:
    """A page of anomalies, newest first, and how many match in all.  With ``f.before``
    (keyset paging) the page starts after that row, whatever ``f.page`` says."""
    cond = _conditions(f)
    with Session(ctx.engine) as db:
        total = db.scalar(select(func.count()).select_from(Anomaly).where(*cond)) or 0
        if f.before is not None:
            return _page_rows(db, [*cond, _older_than(f.before)], f.per_page), total
        return _page_rows(db, cond, f.per_page, (f.page - 1) * f.per_page), total


def recent_anomalies(
    ctx: Context, since: int, after_id: int = 0, limit: int = 200
) -> list[dict[str, Any]]:
    with Session(ctx.engine) as db:
        return _page_rows(db, _conditions(Filters(since=since, after_id=after_id)), limit)


def find_anomaly_id(ctx: Context, ref: str) -> int | None:
    """``ref`` is an anomaly id or an event id (``analyzer:1795459426:3f2a...``)."""
    with Session(ctx.engine) as db:
        number = whole_number(ref)
        if number is not None:
            return db.scalar(select(Anomaly.id).where(Anomaly.id == number))
        return db.scalar(select(Anomaly.id).where(Anomaly.event_id == ref[:128]))


def anomaly_detail(ctx: Context, anomaly_id: int) -> dict[str, Any] | None:
    labels = _latest_labels()
    with Session(ctx.engine) as db:
        row = db.execute(
            select(Anomaly, Metric.name, labels.c.label)
            .join(Metric, Anomaly.metric_id == Metric.id)
            .outerjoin(labels, labels.c.anomaly_id == Anomaly.id)
            .where(Anomaly.id == anomaly_id)
        ).first()
        if row is None:
            return None
        a, name, label = row
        out = anomaly_dict(a, name, label, delivery_failures(db, [a.id]).get(a.id))
        out["verdicts"] = [
            {"stage": v.stage, "verdict": v.verdict, "reason": v.reason, "detail": v.detail,
             "created_at": v.created_at}
            for v in a.verdicts
        ]  # fmt: skip
        alerts = db.scalars(
            select(AlertLog)
            .where((AlertLog.anomaly_id == a.id) | (AlertLog.event_id == a.event_id))
            .order_by(AlertLog.id)
        )
        out["alerts"] = [
            {"channel": r.channel, "rule_pattern": r.rule_pattern, "attempt": r.attempt,
             "status": r.status, "error": r.error, "created_at": r.created_at,
             "delivered_at": r.delivered_at}
            for r in alerts
        ]  # fmt: skip
        history = db.execute(
            select(Label, User.username)
            .outerjoin(User, Label.user_id == User.id)
            .where(Label.anomaly_id == a.id)
            .order_by(Label.id)
        ).all()
        out["labels"] = [
            {"label": lb.label, "user": user, "note": lb.note, "created_at": lb.created_at}
            for lb, user in history
        ]
        out["matches"] = _profile_matches(db, a)
        out["correlations"] = _correlations(db, a)
        out["profile_id"] = db.scalar(
            select(FeaturesProfile.id).where(
                FeaturesProfile.anomaly_id == a.id, FeaturesProfile.deleted.is_(False)
            )
        )
        return out


def _correlations(db: Session, a: Anomaly) -> list[dict[str, Any]]:
    """The metrics luminosity found moved with this anomaly, strongest first."""
    rows = db.execute(
        select(Metric.name, Correlation.coefficient, Correlation.shifted,
               Correlation.shifted_coefficient)
        .join(Metric, Correlation.metric_id == Metric.id)
        .where(Correlation.anomaly_id == a.id)
        .order_by(func.abs(Correlation.coefficient).desc(), Metric.name)
    ).all()  # fmt: skip
    return [{"metric": name, "coefficient": coef, "shift_seconds": shifted,
             "shifted_coefficient": shifted_coef} for name, coef, shifted, shifted_coef in rows]  # fmt: skip


def _profile_matches(db: Session, a: Anomaly) -> list[dict[str, Any]]:
    """The features profiles that matched (so silenced) this anomaly."""
    rows = db.scalars(
        select(ProfileMatch)
        .where((ProfileMatch.anomaly_id == a.id) | (ProfileMatch.event_id == a.event_id))
        .order_by(ProfileMatch.id)
    )
    return [
        {"profile_id": r.profile_id, "match_type": r.match_type, "distance": r.distance,
         "features_sum": r.features_sum, "created_at": r.created_at}
        for r in rows
    ]  # fmt: skip


def add_label(ctx: Context, anomaly_id: int, label: str, user_id: int, note: str | None) -> None:
    if label not in LABELS:
        raise BadFilter(f"label: one of {', '.join(LABELS)}")
    with Session(ctx.engine) as db:
        db.add(Label(anomaly_id=anomaly_id, label=label, user_id=user_id, note=note or None))
        db.commit()


STAGES = ("analyzer", "mirage", "ionosphere", "alerters")
SOURCE_STAGES = {"boundary": ("boundary", "alerters"), "thunder": ("thunder", "alerters")}


def trail(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """analyzer -> mirage -> ionosphere -> alert (boundary -> alert, thunder -> alert for
    those daemons' anomalies): each stage's last verdict, or not reached."""
    last = {}
    for v in detail["verdicts"]:
        last[v["stage"]] = v
    stages = SOURCE_STAGES.get(detail.get("source", ""), STAGES)
    return [{"stage": s, "step": last.get(s)} for s in stages]


# Metrics -----------------------------------------------------------------------------
def search_metrics(ctx: Context, pattern: str, limit: int = 200) -> tuple[list[str], int]:
    """The metric names ``pattern`` selects (the one filter of the Metrics page, its
    browser and /api/v1/metrics): the first ``limit`` and how many in all."""
    names = ctx.names.search(ctx.store, pattern)
    return names[:limit], len(names)


def metric_series(
    ctx: Context, name: str, since: int | None, until: int | None
) -> list[list[float]]:
    """``[[timestamp, value], ...]`` of the stored window, at most MAX_POINTS: thinned
    to each bucket's lowest and highest point, so no spike is left out."""
    series = ctx.store.read(name)
    ts, vs = series.timestamps, series.values
    keep = (ts >= (since or 0)) & (ts <= (until if until is not None else float("inf")))
    ts, vs = ts[keep], vs[keep]
    ts, vs = extremes(ts, vs, MAX_POINTS // 2)
    return [[int(t), float(v)] for t, v in zip(ts, vs, strict=True)]


# Status -------------------------------------------------------------------------------
def daemon_status(ctx: Context) -> list[dict[str, Any]]:
    """Every built daemon: heartbeat age (None: no heartbeat) and its latest counters."""
    names = built()
    pipe = ctx.redis.pipeline(transaction=False)
    for name in names:
        pipe.get(ctx.keys.heartbeat(name))
        pipe.hgetall(ctx.keys.counters(name))
    replies = pipe.execute()
    now = time.time()
    out = []
    for i, name in enumerate(names):
        raw, counters = replies[2 * i], replies[2 * i + 1]
        beat = json_object(raw)
        out.append({
            "name": name,
            "alive": beat is not None,
            "heartbeat_age": round(now - float(beat.get("ts", now)), 1) if beat else None,
            "pid": beat.get("pid") if beat else None,
            "runs": beat.get("runs") if beat else None,
            "run_time": beat.get("run_time") if beat else None,
            "counters": {k.decode(): _num(v) for k, v in sorted(counters.items())},
            "members": member_rows(ctx.redis, ctx.keys, name, now),
        })  # fmt: skip
    return out


def json_object(raw: bytes | None) -> dict[str, Any] | None:
    """A JSON object stored in Redis (a heartbeat), or None when absent or not one."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _num(raw: bytes) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
