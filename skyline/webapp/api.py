"""REST API under /api/v1: JSON in and out, errors as JSON, pagination, token auth.

Programs authenticate with ``Authorization: Bearer <token>`` (``skyline users
token NAME``); the web pages' own requests use the login session (and, for
changes, the CSRF header).  Every route is described in ``openapi.py``; a test
keeps that document equal to the URL map.
"""

from __future__ import annotations

import time
from typing import Any, cast

from flask import Blueprint, Response, abort, g, jsonify, request, url_for
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from skyline.alerting import mutes
from skyline.db.models import LABELS, AlertMute, Label
from skyline.ingest.vista import status as vista_status
from skyline.webapp import graph_range, label_filter, openapi, queries
from skyline.webapp import ranking as ranking_
from skyline.webapp.auth import ctx, require
from skyline.webapp.request_input import json_object, link_args

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def page_body(
    rows: list[Any], total: int, page: int, per_page: int, cursor: str | None = None
) -> dict[str, Any]:
    """``cursor``: the keyset cursor (``before``) of the next page, when the list has one."""
    try:
        last = queries.last_page(page, total, per_page)
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    nxt = None
    if page < last:
        args: dict[str, Any] = {**link_args(request.args, ("page",)), "page": page + 1}
        if cursor:
            args["before"] = cursor
        values: dict[str, Any] = {**(request.view_args or {}), **args}
        nxt = url_for(request.endpoint or "", **values)
    return {"data": rows, "page": page, "per_page": per_page, "total": total, "pages": last,
            "next": nxt}  # fmt: skip


def _filters() -> queries.Filters:
    f = queries.Filters.from_args(request.args, ctx().settings.webapp.page_size)
    if f.errors:
        abort(400, description="; ".join(f.errors))
    return f


def json_body() -> dict[str, Any]:
    return json_object()


@bp.route("/openapi.json")
def openapi_document() -> Any:
    return jsonify(openapi.document())


@bp.route("/me")
def me() -> Any:
    u = g.user
    return jsonify(id=u.id, username=u.username, role=u.role, token=u.token_id is not None)


@bp.route("/anomalies")
def anomalies() -> Any:
    f = _filters()
    rows, total = queries.list_anomalies(ctx(), f)
    cursor = f"{rows[-1]['timestamp']}:{rows[-1]['id']}" if rows else None
    return jsonify(page_body(rows, total, f.page, f.per_page, cursor))


def _anomaly_id(ref: str) -> int:
    anomaly_id = queries.find_anomaly_id(ctx(), ref)
    if anomaly_id is None:
        abort(404, description="no such anomaly")
    return anomaly_id


@bp.route("/anomalies/<ref>")
def anomaly(ref: str) -> Any:
    return jsonify(queries.anomaly_detail(ctx(), _anomaly_id(ref)))


@bp.route("/anomalies/<ref>/labels", methods=["POST"])
@require("operator")
def label_anomaly(ref: str) -> Any:
    anomaly_id = _anomaly_id(ref)
    body = json_body()
    label, note = body.get("label"), body.get("note")
    if label not in LABELS:
        abort(400, description=f"label must be one of {', '.join(LABELS)}")
    if note is not None and not isinstance(note, str):
        abort(400, description="note must be a string")
    queries.add_label(ctx(), anomaly_id, label, g.user.id, (note or "")[:2000])
    return jsonify(queries.anomaly_detail(ctx(), anomaly_id)), 201


@bp.route("/anomalies/<ref>/resolve", methods=["POST"])
@require("operator")
def resolve_anomaly(ref: str) -> Any:
    from skyline.alerting.resolve import resolve_anomaly as resolve

    anomaly_id = _anomaly_id(ref)
    outcomes = resolve(ctx().settings, ctx().engine, anomaly_id, g.user.username)
    return jsonify(anomaly_id=anomaly_id, channels=outcomes)


@bp.route("/labels")
def labels() -> Any:
    f = _filters()
    with Session(ctx().engine) as db:
        total = db.scalar(select(func.count()).select_from(Label)) or 0
        rows = db.scalars(
            select(Label)
            .order_by(Label.id.desc())
            .limit(f.per_page)
            .offset((f.page - 1) * f.per_page)
        )
        data = [
            {"id": r.id, "anomaly_id": r.anomaly_id, "label": r.label, "user_id": r.user_id,
             "note": r.note, "created_at": r.created_at}
            for r in rows
        ]  # fmt: skip
    return jsonify(page_body(data, total, f.page, f.per_page))


@bp.route("/metrics")
def metrics() -> Any:
    f = _filters()
    try:
        names, total = label_filter.select_metrics(
            ctx(), request.args.get("q", "")[:1024], request.args.get("selector", ""), limit=10**9
        )
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    start = (f.page - 1) * f.per_page
    return jsonify(page_body(names[start : start + f.per_page], total, f.page, f.per_page))


@bp.route("/metrics/<path:name>")
def metric(name: str) -> Any:
    try:
        since = queries.parse_time(request.args.get("from"), "from")
        until = queries.parse_time(request.args.get("until"), "until")
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    data = queries.metric_series(ctx(), name, since, until)
    if not data and not ctx().redis.sismember(ctx().keys.metrics(), name):
        abort(404, description="no such metric")
    labels = label_filter.metric_labels(ctx(), name)
    if request.args.get("marks") != "1":
        return jsonify(metric=name, labels=labels, data=data)
    lo = since if since is not None else (int(data[0][0]) if data else 0)
    hi = until if until is not None else queries.MAX_TIME
    return jsonify(
        metric=name, labels=labels, data=data, **graph_range.marks(ctx().engine, name, lo, hi)
    )


@bp.route("/ranking")
def ranking() -> Any:
    now = time.time()
    try:
        span = graph_range.graph_range(request.args, int(now) - 6 * 3600, int(now), now)
        by, limit = ranking_.parse(request.args)
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    rows = ranking_.rank(ctx(), span.since, span.until, by, limit)
    return jsonify({"from": span.since, "until": span.until, "by": by, "data": rows})


@bp.route("/status")
def status() -> Any:
    c = ctx()
    return jsonify(
        daemons=queries.daemon_status(c),
        sources=vista_status.read(c.redis, c.keys),
        time=time.time(),
    )


def _mute_dict(m: AlertMute) -> dict[str, Any]:
    return {"id": m.id, "pattern": m.pattern, "until": m.until, "reason": m.reason,
            "created_by": m.created_by, "created_at": m.created_at}  # fmt: skip


@bp.route("/mutes")
def list_mutes() -> Any:
    return jsonify(data=[_mute_dict(m) for m in mutes.active(ctx().engine)])


@bp.route("/mutes", methods=["POST"])
@require("operator")
def add_mute() -> Any:
    body = json_body()
    pattern, duration, reason = body.get("pattern"), body.get("duration"), body.get("reason")
    if not isinstance(pattern, str):
        abort(400, description="pattern: a metric name or pattern, a string")
    try:
        mutes.check_pattern(pattern)
    except ValueError as exc:
        abort(400, description=f"pattern: {exc}")
    try:
        seconds = mutes.parse_duration(str(duration))
    except ValueError as exc:
        abort(400, description=f"duration: {exc}")
    if reason is not None and not isinstance(reason, str):
        abort(400, description="reason must be a string")
    until = mutes.mute(ctx().engine, pattern, seconds, reason, g.user.id)
    with Session(ctx().engine) as db:
        row = db.scalars(
            select(AlertMute).where(AlertMute.pattern == pattern, AlertMute.until == until)
            .order_by(AlertMute.id.desc())
        ).first()  # fmt: skip
        assert row is not None  # mute() has just written it
        return jsonify(_mute_dict(row)), 201


@bp.route("/mutes/<int:mute_id>", methods=["DELETE"])
@require("operator")
def delete_mute(mute_id: int) -> Any:
    with Session(ctx().engine) as db:
        n = cast(
            CursorResult[Any], db.execute(delete(AlertMute).where(AlertMute.id == mute_id))
        ).rowcount
        db.commit()
    if not n:
        abort(404, description="no such mute")
    return Response(status=204)
