"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written here by hand (so it says what each route means) and checked against the
app's URL map by ``undocumented`` (a test requires no difference either way).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

PREFIX = "/api/v1"


def _q(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc,
            "schema": {"type": typ}}  # fmt: skip


def _p(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": {"type": typ}}  # fmt: skip


PAGING = [_q("page", "page number, from 1", "integer"),
          _q("per_page", "rows per page (default [webapp] page_size, at most 1000)", "integer")]  # fmt: skip
ANOMALY_FILTERS = [
    _q("metric", "metric name pattern: * and ? wildcards; without them, a substring"),
    _q("since", "from this time: epoch seconds, ISO 8601 (UTC by default) or an age like 6h"),
    _q("until", "up to this time, same forms"),
    _q("daemon", "the detecting daemon: analyzer, mirage, boundary"),
    _q("verdict", "pending, anomalous, not_anomalous, alerted, expired"),
    _q("label", "true_positive, false_positive, or none (not labelled)"),
    _q("after_id", "only anomalies with a larger id (for polling)", "integer"),
    _q(
        "before",
        "keyset paging: TIMESTAMP:ID of the last row seen; the page starts after it "
        "(the 'next' link carries it)",
    ),
]
PROFILE_ID = _p("profile_id", "features profile id", "integer")
REF = _p("ref", "anomaly id, or its event id (analyzer:TIMESTAMP:HASH) as in alert links")


def _ok(desc: str, schema: str, code: str = "200") -> dict[str, Any]:
    return {code: {"description": desc,
                   "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}},
            "default": {"$ref": "#/components/responses/Error"}}  # fmt: skip


def _op(summary: str, responses: dict[str, Any], params: list | None = None,
        body: str | None = None, role: str = "viewer") -> dict[str, Any]:  # fmt: skip
    op: dict[str, Any] = {"summary": summary, "description": f"Needs the {role} role.",
                          "parameters": params or [], "responses": responses}  # fmt: skip
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}  # fmt: skip
    return op


PATHS: dict[str, dict[str, Any]] = {
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        }
    },
    "/me": {"get": _op("The authenticated user", _ok("the user", "User"))},
    "/anomalies": {
        "get": _op(
            "Anomalies, newest first, filtered and paginated",
            _ok("a page of anomalies", "AnomalyPage"),
            ANOMALY_FILTERS + PAGING,
        )
    },
    "/anomalies/{ref}": {
        "get": _op(
            "One anomaly with its verdict trail, alerts and labels",
            _ok("the anomaly", "AnomalyDetail"),
            [REF],
        )
    },
    "/anomalies/{ref}/labels": {
        "post": _op(
            "Label an anomaly true or false positive (the newest label counts)",
            _ok("the anomaly, labelled", "AnomalyDetail", "201"),
            [REF],
            "LabelIn",
            "operator",
        )
    },
    "/anomalies/{ref}/resolve": {
        "post": _op(
            "Mark an anomaly resolved: a verdict in its trail, and the incident it opened "
            "resolved on each channel that keeps incidents (PagerDuty)",
            _ok("the channels and what resolving did on each", "Resolved"),
            [REF],
            None,
            "operator",
        )
    },
    "/labels": {"get": _op("Labels, newest first", _ok("a page of labels", "Page"), PAGING)},
    "/metrics": {
        "get": _op(
            "Metric names in the store, sorted",
            _ok("a page of names", "Page"),
            [
                _q("q", "name pattern: * ? [] wildcards; without them a substring"),
                _q(
                    "selector",
                    'label selector, Prometheus syntax: http_requests_total{code=~"5.."}; '
                    "a malformed one is a 400 saying why",
                ),
                *PAGING,
            ],  # fmt: skip
        )
    },
    "/metrics/{name}": {
        "get": _op(
            "One metric's stored datapoints (at most 5000, thinned evenly) and its label set",
            _ok("the series", "Series"),
            [
                _p("name", "metric name (may contain '/')"),
                _q("from", "from this time"),
                _q("until", "up to this time"),
                _q(
                    "marks",
                    "1: also the metric's anomalies and alert deliveries in the range "
                    "(what the graphs mark)",
                    "integer",
                ),
            ],
        )
    },
    "/ranking": {
        "get": _op(
            "The metrics most anomalous in a window: by anomalies per stored point (rate) or "
            "by anomaly count (400 for a bad, reversed or over-400-day range)",
            _ok("the ranking", "Ranking"),
            [
                _q("from", "window start: epoch seconds, ISO 8601 or an age like 6h (default 6h)"),
                _q("until", "window end, same forms (default now)"),
                _q("by", "rate (default) or count"),
                _q("limit", "how many metrics, 1 to 500 (default 50)", "integer"),
            ],
        )
    },
    "/anomalies/{ref}/profiles": {
        "post": _op(
            "Train the anomaly's window as normal: create a features profile (409 if already "
            "trained, 422 if its window cannot be trained, e.g. no longer stored)",
            _ok("the new profile", "Profile", "201"),
            [REF],
            "ProfileIn",
            "operator",
        )
    },
    "/profiles": {
        "get": _op(
            "A metric's features profiles (not deleted), newest first",
            _ok("the profiles", "Profiles"),
            [_q("metric", "the metric's full name (required)")],
        )
    },
    "/profiles/{profile_id}": {
        "get": _op(
            "One features profile with its features and matches",
            _ok("the profile", "Profile"),
            [PROFILE_ID],
        ),
        "patch": _op(
            "Enable, disable or validate a profile (disabling disables its learnt profiles too)",
            _ok("the profile", "Profile"),
            [PROFILE_ID],
            "ProfileChange",
            "operator",
        ),
        "delete": _op(
            "Delete a profile and its learnt profiles (kept for the record, never compared again)",
            {
                "204": {"description": "deleted"},
                "default": {"$ref": "#/components/responses/Error"},
            },
            [PROFILE_ID],
            role="operator",
        ),
    },
    "/profiles/{profile_id}/series": {
        "get": _op("The window a profile was trained on", _ok("the series", "Series"), [PROFILE_ID])
    },
    "/status": {"get": _op("Each daemon's heartbeat age and counters", _ok("daemons", "Status"))},
    "/mutes": {
        "get": _op("Active alert mutes", _ok("mutes", "Mutes")),
        "post": _op(
            "Mute alerts of metrics matching a pattern for a while",
            _ok("the mute", "Mute", "201"),
            body="MuteIn",
            role="operator",
        ),
    },
    "/mutes/{mute_id}": {
        "delete": _op(
            "End a mute",
            {
                "204": {"description": "deleted"},
                "default": {"$ref": "#/components/responses/Error"},
            },
            [_p("mute_id", "mute id", "integer")],
            role="operator",
        )
    },
}

_OBJ = {"type": "object"}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                             "reason": {"type": "string"}}},
    "User": {"type": "object", "properties": {"id": {"type": "integer"}, "username": {"type": "string"},
             "role": {"enum": ["viewer", "operator", "admin"]}, "token": {"type": "boolean"}}},
    "Anomaly": {"type": "object", "properties": {
        "id": {"type": "integer"}, "event_id": {"type": "string"}, "metric": {"type": "string"},
        "timestamp": {"type": "integer"}, "value": {"type": ["number", "null"]},
        "source": {"type": "string"}, "triggered_algorithms": {"type": "array", "items": {"type": "string"}},
        "algorithms_run": {"type": "array", "items": {"type": "string"}}, "scores": _OBJ,
        "verdict": {"type": "string"}, "label": {"type": ["string", "null"]},
        "failed_channels": {"type": "array", "items": {"type": "string"},
                            "description": "alert channels whose delivery failed"},
        "verdict_text": {"type": "string",
                         "description": "the verdict as shown, e.g. 'alerted (slack failed)'"}}},
    "AnomalyDetail": {"allOf": [{"$ref": "#/components/schemas/Anomaly"}, {"type": "object", "properties": {
        "verdicts": {"type": "array", "items": _OBJ}, "alerts": {"type": "array", "items": _OBJ},
        "labels": {"type": "array", "items": _OBJ},
        "correlations": {"type": "array", "description": "metrics that moved with it (luminosity), strongest first",
                         "items": {"type": "object", "properties": {
                             "metric": {"type": "string"}, "coefficient": {"type": "number"},
                             "shift_seconds": {"type": "integer"}, "shifted_coefficient": {"type": "number"}}}}}}]},
    "Page": {"type": "object", "properties": {
        "data": {"type": "array"}, "page": {"type": "integer"}, "per_page": {"type": "integer"},
        "total": {"type": "integer"}, "pages": {"type": "integer"}, "next": {"type": ["string", "null"]}}},
    "AnomalyPage": {"allOf": [{"$ref": "#/components/schemas/Page"}, {"type": "object", "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Anomaly"}}}}]},
    "Series": {"type": "object", "properties": {"metric": {"type": "string"}, "labels": {
        "type": "object", "additionalProperties": {"type": "string"},
        "description": "the metric's label set (a plain dotted name: only __name__)"}, "data": {
        "type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]}},
        "anomalies": {"type": "array", "description": "with marks=1", "items": _OBJ},
        "alerts": {"type": "array", "description": "with marks=1", "items": _OBJ}}},
    "Ranking": {"type": "object", "properties": {
        "from": {"type": "integer"}, "until": {"type": "integer"}, "by": {"enum": ["rate", "count"]},
        "data": {"type": "array", "items": {"type": "object", "properties": {
            "metric": {"type": "string"}, "anomalies": {"type": "integer"},
            "points": {"type": ["integer", "null"], "description": "points stored in the window"},
            "rate": {"type": ["number", "null"], "description": "anomalies / points"},
            "last": {"type": "integer", "description": "the newest anomaly's time"}}}}}},
    "Status": {"type": "object", "properties": {"daemons": {"type": "array", "items": _OBJ},
                                                "time": {"type": "number"}}},
    "Resolved": {"type": "object", "properties": {"anomaly_id": {"type": "integer"}, "channels": {
        "type": "object", "additionalProperties": {"type": "string"},
        "description": "channel -> 'resolved' or 'failed: <reason>'"}}},
    "LabelIn": {"type": "object", "required": ["label"], "properties": {
        "label": {"enum": ["true_positive", "false_positive"]}, "note": {"type": "string"}}},
    "Profile": {"type": "object", "properties": {
        "id": {"type": "integer"}, "metric": {"type": "string"}, "enabled": {"type": "boolean"},
        "validated": {"type": "boolean"}, "generation": {"type": "integer"},
        "parent_id": {"type": ["integer", "null"]}, "anomaly_id": {"type": ["integer", "null"]},
        "anomaly_timestamp": {"type": "integer"},
        "full_duration": {"type": "integer", "description": "length of the window, s"},
        "data_seconds": {"type": "integer", "description": "time its points cover, s (less "
                         "than full_duration when the store held less; single profile only)"},
        "matched_count": {"type": "integer"}, "last_matched": {"type": ["integer", "null"]},
        "features_count": {"type": "integer"}, "features_sum": {"type": "number"},
        "features": _OBJ, "matches": {"type": "array", "items": _OBJ}}},
    "Profiles": {"type": "object", "properties": {"metric": {"type": "string"},
                 "data": {"type": "array", "items": {"$ref": "#/components/schemas/Profile"}}}},
    "ProfileIn": {"type": "object", "properties": {
        "learn": {"type": "boolean", "description": "learn from later anomalies (ionosphere learning)"},
        "label": {"type": "string"}}},
    "ProfileChange": {"type": "object", "properties": {
        "enabled": {"type": "boolean"}, "validated": {"const": True}}},
    "Mute": {"type": "object", "properties": {"id": {"type": "integer"}, "pattern": {"type": "string"},
             "until": {"type": "integer"}, "reason": {"type": ["string", "null"]}}},
    "Mutes": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Mute"}}}},
    "MuteIn": {"type": "object", "required": ["pattern", "duration"], "properties": {
        "pattern": {"type": "string"}, "duration": {"type": "string", "examples": ["2h", "30m", "3600"]},
        "reason": {"type": "string"}}},
}  # fmt: skip


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Skyline API", "version": "1",
                 "description": "Anomalies, metrics, labels, features profiles, daemon status and alert mutes. "
                 "Authenticate with 'Authorization: Bearer <token>' (skyline users token NAME)."},
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {"Error": {"description": "an error", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    }  # fmt: skip


def routes(app: Flask) -> set[tuple[str, str]]:
    """(path, method) of every /api/v1 route, in OpenAPI's {param} spelling."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX) :])
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                out.add((path, method.lower()))
    return out


def undocumented(app: Flask) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(routes missing from the document, documented operations with no route)."""
    documented = {(path, m) for path, ops in PATHS.items() for m in ops}
    actual = routes(app)
    return actual - documented, documented - actual
