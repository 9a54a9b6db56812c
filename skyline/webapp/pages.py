"""The pages: Now, Anomalies, Anomaly, Metrics, Status (server-rendered, autoescaped)."""

from __future__ import annotations

import io
import time
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from skyline.db.models import LABELS, VERDICTS
from skyline.ingest.vista import importer
from skyline.ingest.vista import status as vista_status
from skyline.webapp import queries, training
from skyline.webapp.auth import ctx, require

bp = Blueprint("pages", __name__)
SOURCES = ("analyzer", "mirage", "boundary", "ionosphere")


@bp.route("/health")
def health() -> Any:
    return {"ok": True}


@bp.route("/")
def index() -> Any:
    return redirect(url_for("pages.now"))


@bp.route("/now")
def now() -> Any:
    hours = ctx().settings.webapp.now_hours
    since = int(time.time()) - hours * 3600
    rows = queries.recent_anomalies(ctx(), since)
    return render_template("now.html", rows=rows, hours=hours, since=since,
                           last_id=max((r["id"] for r in rows), default=0))  # fmt: skip


@bp.route("/anomalies")
def anomalies() -> Any:
    f = queries.Filters.from_args(request.args, ctx().settings.webapp.page_size)
    rows, total = queries.list_anomalies(ctx(), f)
    pages = max(1, -(-total // f.per_page))
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "anomalies.html", rows=rows, total=total, f=f, pages=pages, args=args,
        sources=SOURCES, verdicts=VERDICTS, labels=LABELS,
    )  # fmt: skip


@bp.route("/anomaly/<ref>")
def anomaly(ref: str) -> Any:
    anomaly_id = queries.find_anomaly_id(ctx(), ref)
    if anomaly_id is None:
        abort(404, description="no such anomaly")
    detail = queries.anomaly_detail(ctx(), anomaly_id)
    assert detail is not None
    c = ctx()
    window = c.settings.webapp.graph_window
    # a thunder event (skyline.thunder.<daemon>.down...) is no point of a stored series,
    # and a metric roomba deleted has none any more: no chart, nothing to train
    event_only = detail["source"] == "thunder"
    has_series = not event_only and bool(c.redis.sismember(c.keys.metrics(), detail["metric"]))
    return render_template(
        "anomaly.html", a=detail, trail=queries.trail(detail), labels=LABELS,
        since=detail["timestamp"] - window, until=detail["timestamp"] + window // 6,
        event_only=event_only, has_series=has_series, luminosity=c.settings.luminosity,
    )  # fmt: skip


@bp.route("/anomaly/<int:anomaly_id>/label", methods=["POST"])
@require("operator")
def label(anomaly_id: int) -> Any:
    if queries.find_anomaly_id(ctx(), str(anomaly_id)) is None:
        abort(404, description="no such anomaly")
    value = request.form.get("label", "")
    if value not in LABELS:
        abort(400, description=f"label must be one of {', '.join(LABELS)}")
    note = request.form.get("note", "")[:2000]
    queries.add_label(ctx(), anomaly_id, value, g.user.id, note)
    flash(f"Labelled {value.replace('_', ' ')}.")
    return redirect(url_for("pages.anomaly", ref=anomaly_id))


@bp.route("/metrics")
def metrics() -> Any:
    q = request.args.get("q", "")[:1024]
    name = request.args.get("name", "")[:1024]
    found, total = queries.search_metrics(ctx(), q) if q or not name else ([], 0)
    window = ctx().settings.webapp.graph_window
    profiles = training.metric_profiles(ctx(), name) if name else []
    return render_template("metrics.html", q=q, name=name, found=found, total=total,
                           since=int(time.time()) - window, profiles=profiles)  # fmt: skip


@bp.route("/metrics/import", methods=["POST"])
@require("operator")
def import_csv() -> Any:
    """The upload form of the Metrics page: a CSV of timestamp,value into one metric, by
    the route pulled points take (skyline.ingest.vista.importer)."""
    metric = request.form.get("metric", "").strip()[:1024]
    upload = request.files.get("file")
    if upload is None or not metric:
        abort(400, description="choose a CSV file and name the metric")
    text = io.TextIOWrapper(upload.stream, encoding="utf-8", errors="replace", newline="")
    try:
        t, v = importer.read_csv(text, upload.filename or "upload")
        c = ctx()
        out = importer.import_points(c.store, c.settings, metric, t, v, time.time())
    except ValueError as exc:
        abort(400, description=str(exc))
    flash(f"Imported {out['live'] + out['rolled_up']} points into {metric} ({out['live']} in "
          f"the last day, {out['rolled_up']} older into the rollups, {out['already_stored']} "
          "already stored).")  # fmt: skip
    return redirect(url_for("pages.metrics", name=metric))


@bp.route("/status")
def status() -> Any:
    c = ctx()
    daemons = queries.daemon_status(c)
    pipe = c.redis.pipeline(transaction=False)
    streams = {
        "anomalies": c.keys.anomalies_stream(), "alerts": c.keys.alerts_stream(),
        "mirage": c.keys.mirage_stream(), "ionosphere": c.keys.ionosphere_stream(),
        "verdicts": c.keys.verdicts_stream(),
    }  # fmt: skip
    for key in streams.values():
        pipe.xlen(key)
    pipe.scard(c.keys.metrics())
    *lengths, n_metrics = pipe.execute()
    interval = c.settings.skyline.counters_interval
    return render_template(
        "status.html", daemons=daemons, streams=dict(zip(streams, lengths, strict=True)),
        metrics=n_metrics, interval=interval, highlights=highlights(daemons, interval),
        channels=channel_counters(daemons), sources=vista_status.read(c.redis, c.keys),
    )  # fmt: skip


def channel_counters(daemons: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per alert channel: sent, retried and failed attempts (the alerters' counters
    ``channel.<name>.<what>``) in the last counters interval."""
    counters: dict[str, float] = next(
        (d["counters"] for d in daemons if d["name"] == "alerters"), {}
    )
    out: dict[str, dict[str, float]] = {}
    for name, value in counters.items():
        if not name.startswith("channel."):
            continue
        channel, _, what = name.removeprefix("channel.").rpartition(".")
        if channel and what in ("sent", "retried", "failed"):
            out.setdefault(channel, {"sent": 0, "retried": 0, "failed": 0})[what] = value or 0
    return dict(sorted(out.items()))


def highlights(daemons: list[dict[str, Any]], interval: int) -> list[tuple[str, str]]:
    """The few figures an operator looks at first."""
    by = {d["name"]: d for d in daemons}

    def counter(daemon: str, name: str) -> float | None:
        return by.get(daemon, {}).get("counters", {}).get(name)

    out = []
    written = counter("horizon", "datapoints_written")
    if written is not None:
        out.append(("horizon ingest rate", f"{written / interval:.1f} datapoints/s"))
    flux = counter("flux", "datapoints_written")
    if flux is not None:
        out.append(("flux ingest rate", f"{flux / interval:.1f} datapoints/s"))
    run_time = by.get("analyzer", {}).get("run_time")
    if run_time is not None:
        out.append(("analyzer run time", f"{run_time:.3f} s"))
    for daemon, name in (("horizon", "queue_points"), ("panorama", "pending"),
                         ("alerters", "pending"), ("alerters", "inflight")):  # fmt: skip
        value = counter(daemon, name)
        if value is not None:
            out.append((f"{daemon} {name.replace('_', ' ')}", f"{value:g}"))
    return out
