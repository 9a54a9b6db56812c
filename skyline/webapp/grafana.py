"""``/api/grafana/``: Grafana's JSON data source contract, so Skyline's anomalies and
series appear on existing Grafana dashboards.

Implements the routes of the simPod JSON data source (``simpod-json-datasource``) and of
the older SimpleJson one it replaced: ``GET /`` (test connection), ``POST /search`` and
``POST /metrics`` (metric names), ``POST /metric-payload-options``, ``POST /query``
(time series of a metric, or the anomalies as a table), ``POST /annotations`` (anomalies
as annotations), ``POST /variable``, ``POST /tag-keys``, ``POST /tag-values``.  The
Infinity data source can read the same routes as plain JSON.  Authentication is an API
token (``Authorization: Bearer``, as for ``/api/v1``); ``docs/grafana.md`` has a
provisioning example.

A target names a metric (``web.latency``); ``anomalies`` or ``anomalies:PATTERN`` asks for
the anomalies (of the metrics matching the shell pattern) in the range.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

from flask import Blueprint, abort, jsonify

from skyline.webapp import queries
from skyline.webapp.auth import ctx
from skyline.webapp.request_input import json_object

bp = Blueprint("grafana", __name__, url_prefix="/api/grafana")
ANOMALIES = "anomalies"
MAX_TARGETS = 50
MAX_ANNOTATIONS = 1000


def _body() -> dict[str, Any]:
    return json_object(empty_ok=True)


def _epoch(value: Any, name: str) -> int:
    """Grafana sends ISO 8601 (``2026-12-06T01:57:03.123Z``) or epoch milliseconds;
    a time more than 9999 years from 1970 (or NaN, which Python's JSON reads) would
    overflow SQL's integers and numpy's: a 400."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and abs(value) <= queries.MAX_TIME * 1000:
            return int(value // 1000)
    elif isinstance(value, str):
        try:
            return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    abort(400, description=f"range.{name}: an ISO 8601 time or epoch milliseconds")


def _range(body: dict[str, Any]) -> tuple[int, int]:
    rng = body.get("range")
    if not isinstance(rng, dict) or "from" not in rng or "to" not in rng:
        abort(400, description="range: an object with 'from' and 'to'")
    since, until = _epoch(rng["from"], "from"), _epoch(rng["to"], "to")
    if since > until:
        abort(400, description="range: 'from' is after 'to'")
    return since, until


def _names(query: Any) -> list[str]:
    pattern = query if isinstance(query, str) else ""
    names, _ = queries.search_metrics(ctx(), pattern[:1024], limit=1000)
    return names


def _anomalies(pattern: str, since: int, until: int) -> list[dict[str, Any]]:
    f = queries.Filters(metric=pattern[:1024], since=since, until=until, per_page=MAX_ANNOTATIONS)
    rows, _ = queries.list_anomalies(ctx(), f)
    return rows


def _link(row: dict[str, Any]) -> str:
    return f"{ctx().settings.webapp_base_url}/anomaly/{row['id']}"


def _text(row: dict[str, Any]) -> str:
    """Grafana shows annotation text as HTML: everything from the data is escaped."""
    algorithms = ", ".join(row["triggered_algorithms"]) or "-"
    said = f"{row['metric']} = {row['value']}: {row['verdict_text']} (triggered: {algorithms})"
    return f'{html.escape(said)} <a href="{html.escape(_link(row))}">open in Skyline</a>'


@bp.route("/", methods=["GET"])
def test_connection() -> Any:
    return jsonify(status="ok", datasource="skyline")


@bp.route("/search", methods=["POST"])
def search() -> Any:
    return jsonify([ANOMALIES, *_names(_body().get("target"))])


@bp.route("/metrics", methods=["POST"])
def metrics() -> Any:
    names = [ANOMALIES, *_names(_body().get("metric"))]
    return jsonify([{"label": n, "value": n} for n in names])


@bp.route("/metric-payload-options", methods=["POST"])
def metric_payload_options() -> Any:
    return jsonify([])


@bp.route("/variable", methods=["POST"])
def variable() -> Any:
    payload = _body().get("payload")
    target = payload.get("target") if isinstance(payload, dict) else None
    return jsonify([{"__text": n, "__value": n} for n in _names(target)])


@bp.route("/tag-keys", methods=["POST"])
def tag_keys() -> Any:
    return jsonify([])


@bp.route("/tag-values", methods=["POST"])
def tag_values() -> Any:
    return jsonify([])


def _target(t: Any) -> str:
    if not isinstance(t, dict) or not isinstance(t.get("target"), str) or not t["target"]:
        abort(400, description="targets: objects with a non-empty 'target' string")
    return str(t["target"])[:1024]


@bp.route("/query", methods=["POST"])
def query() -> Any:
    body = _body()
    since, until = _range(body)
    targets = body.get("targets")
    if not isinstance(targets, list) or len(targets) > MAX_TARGETS:
        abort(400, description=f"targets: a list of at most {MAX_TARGETS}")
    out = []
    for t in targets:
        name = _target(t)
        if name == ANOMALIES or name.startswith(ANOMALIES + ":"):
            out.append(_anomaly_table(name.partition(":")[2], since, until))
            continue
        points = queries.metric_series(ctx(), name, since, until)
        out.append({"target": name, "datapoints": [[v, int(ts) * 1000] for ts, v in points]})
    return jsonify(out)


def _anomaly_table(pattern: str, since: int, until: int) -> dict[str, Any]:
    rows = _anomalies(pattern, since, until)
    return {
        "type": "table",
        "columns": [
            {"text": "Time", "type": "time"},
            {"text": "metric", "type": "string"},
            {"text": "value", "type": "number"},
            {"text": "verdict", "type": "string"},
            {"text": "text", "type": "string"},
        ],  # fmt: skip
        "rows": [
            [r["timestamp"] * 1000, r["metric"], r["value"], r["verdict_text"], _text(r)]
            for r in rows
        ],  # fmt: skip
    }


@bp.route("/annotations", methods=["POST"])
def annotation_list() -> Any:
    body = _body()
    since, until = _range(body)
    annotation = body.get("annotation")
    pattern = annotation.get("query") if isinstance(annotation, dict) else None
    rows = _anomalies(pattern if isinstance(pattern, str) else "", since, until)
    return jsonify([
        {"annotation": annotation, "time": r["timestamp"] * 1000,
         "title": f"Skyline anomaly: {r['metric']}", "text": _text(r),
         "tags": ["skyline", r["verdict"], r["source"]]}
        for r in rows
    ])  # fmt: skip
