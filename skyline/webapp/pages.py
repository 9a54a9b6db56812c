"""The pages: Now, Anomalies, Anomaly, Metrics, Status (server-rendered, autoescaped)."""

from __future__ import annotations

import io
import time
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from skyline.db.models import LABELS, VERDICTS
from skyline.ingest.vista import importer
from skyline.ingest.vista import status as vista_status
from skyline.webapp import formats, graph_range, label_filter, metric_browser, queries, training
from skyline.webapp import ranking as ranking_
from skyline.webapp.auth import ctx, require
from skyline.webapp.request_input import link_args

bp = Blueprint("pages", __name__)
SOURCES = ("analyzer", "mirage", "boundary", "ionosphere")
SPARK_RECORDS = 8640  # the ranking's sparklines read at most a day at 10 s of each metric


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
    try:
        pages = queries.last_page(f.page, total, f.per_page)
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    args = link_args(request.args, ("page", "before"))
    return render_template(
        "anomalies.html", rows=rows, total=total, f=f, pages=pages, args=args,
        sources=SOURCES, verdicts=VERDICTS, labels=LABELS,
    )  # fmt: skip


@bp.route("/anomaly/<ref>")
def anomaly(ref: str) -> Any:
    anomaly_id = queries.find_anomaly_id(ctx(), ref)
    if anomaly_id is None:
        abort(404, description=f"No anomaly with the id or event id {ref[:200]!r}: it may have "
              "been pruned, or the link is mistyped. Search the Anomalies page.")  # fmt: skip
    detail = queries.anomaly_detail(ctx(), anomaly_id)
    assert detail is not None
    c = ctx()
    window, at = c.settings.webapp.graph_window, detail["timestamp"]
    span = _range(at - window, at + window // 6, time.time())
    metric_labels = label_filter.metric_labels(c, detail["metric"])
    metric_labels.pop("__name__", None)
    # a thunder event (skyline.thunder.<daemon>.down...) is no point of a stored series,
    # and a metric roomba deleted has none any more: no chart, nothing to train
    event_only = detail["source"] == "thunder"
    has_series = not event_only and bool(c.redis.sismember(c.keys.metrics(), detail["metric"]))
    return render_template(
        "anomaly.html", a=detail, trail=queries.trail(detail), labels=LABELS,
        metric_labels=metric_labels, span=span, presets=graph_range.presets(at),
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
    selector = request.args.get("selector", "")[:4097]
    name = request.args.get("name", "")[:1024]
    prefix = request.args.get("prefix", "")[:1024]
    if prefix and not prefix.endswith("."):
        prefix += "."
    now = time.time()
    found: list[str] = []
    total = 0
    if selector:  # a label selector: the flat list of what matches (not the tree)
        try:
            found, total = label_filter.select_metrics(ctx(), q, selector)
        except queries.BadFilter as exc:
            abort(400, description=str(exc))
    if not name and not selector:
        try:
            page = metric_browser.parse_page(request.args.get("page"))
            b = metric_browser.browse(ctx(), q, prefix, page, now)
        except metric_browser.BadPage as exc:
            abort(400, description=str(exc))
        return render_template("metrics.html", q=q, selector="", name="", b=b)
    span = _range(int(now) - ctx().settings.webapp.graph_window, int(now), now)
    profiles = training.metric_profiles(ctx(), name) if name else []
    labels = label_filter.metric_labels(ctx(), name) if name else {}
    return render_template("metrics.html", q=q, selector=selector, name=name, labels=labels,
                           found=found, total=total, span=span, presets=graph_range.presets(),
                           profiles=profiles)  # fmt: skip


def _range(since: int, until: int, now: float) -> graph_range.GraphRange:
    """The graph's range from the page URL's from/until (400 naming a bad one)."""
    try:
        return graph_range.graph_range(request.args, since, until, now)
    except queries.BadFilter as exc:
        abort(400, description=str(exc))


@bp.route("/ranking")
def ranking() -> Any:
    """The metrics most anomalous in a window (from/until, default the last 6 hours)."""
    now = time.time()
    span = _range(int(now) - 6 * 3600, int(now), now)
    try:
        by, limit = ranking_.parse(request.args)
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    rows = ranking_.rank(ctx(), span.since, span.until, by, limit)
    sparks = metric_browser.sparklines(ctx(), [r["metric"] for r in rows], span.since,
                                       records=max(1, min(span.span // 10, SPARK_RECORDS)))  # fmt: skip
    return render_template("ranking.html", rows=rows, span=span, by=by, limit=limit, sparks=sparks,
                           presets=graph_range.presets(), orders=ranking_.ORDERS)  # fmt: skip


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
        out.append(("horizon ingest rate", formats.rate(written, interval, "datapoints")))
    flux = counter("flux", "datapoints_written")
    if flux is not None:
        out.append(("flux ingest rate", formats.rate(flux, interval, "datapoints")))
    run_time = by.get("analyzer", {}).get("run_time")
    if run_time is not None:
        out.append(("analyzer run time", formats.duration(run_time)))
    for daemon, name in (("horizon", "queue_points"), ("panorama", "pending"),
                         ("alerters", "pending"), ("alerters", "inflight")):  # fmt: skip
        value = counter(daemon, name)
        if value is not None:
            out.append((f"{daemon} {name.replace('_', ' ')}", formats.count(value)))
    return out
