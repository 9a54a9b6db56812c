"""REST API of features profiles under /api/v1 (documented in ``openapi.py``):
list a metric's profiles, show one, its series, train one from an anomaly, enable,
disable, validate and delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, request

from skyline.analysis.ionosphere import profiles
from skyline.webapp import queries, training
from skyline.webapp.api import json_body
from skyline.webapp.auth import ctx, require

bp = Blueprint("api_profiles", __name__, url_prefix="/api/v1")


@bp.route("/profiles")
def list_profiles() -> Any:
    metric = request.args.get("metric", "")
    if not metric or len(metric) > 1024:
        abort(400, description="metric: the metric's full name is required")
    return jsonify(metric=metric, data=training.metric_profiles(ctx(), metric))


@bp.route("/profiles/<int:profile_id>")
def profile(profile_id: int) -> Any:
    p = training.detail_or_404(ctx(), profile_id)
    p.pop("series")
    p["matches"] = training.profile_matches(ctx(), profile_id)
    return jsonify(p)


@bp.route("/profiles/<int:profile_id>/series")
def profile_series(profile_id: int) -> Any:
    p = training.detail_or_404(ctx(), profile_id)
    return jsonify(metric=p["metric"], data=p["series"])


@bp.route("/anomalies/<ref>/profiles", methods=["POST"])
@require("operator")
def train(ref: str) -> Any:
    anomaly_id = queries.find_anomaly_id(ctx(), ref)
    if anomaly_id is None:
        abort(404, description="no such anomaly")
    body = json_body()
    learn, label = body.get("learn", False), body.get("label")
    if not isinstance(learn, bool):
        abort(400, description="learn must be true or false")
    if label is not None and (not isinstance(label, str) or len(label) > 255):
        abort(400, description="label must be a string of at most 255 characters")
    try:
        profile_id = training.train_anomaly(ctx(), anomaly_id, g.user.id, learn=learn, label=label)
    except training.ProfileError as exc:
        abort(409 if "already" in str(exc) else 422, description=str(exc))
    p = training.detail_or_404(ctx(), profile_id)
    p.pop("series")
    return jsonify(p), 201


@bp.route("/profiles/<int:profile_id>", methods=["PATCH"])
@require("operator")
def change(profile_id: int) -> Any:
    training.detail_or_404(ctx(), profile_id)
    body = json_body()
    unknown = set(body) - {"enabled", "validated"}
    if unknown or not body:
        abort(400, description="send enabled (true/false) and/or validated (true)")
    enabled, validated = body.get("enabled"), body.get("validated")
    if enabled is not None and not isinstance(enabled, bool):
        abort(400, description="enabled must be true or false")
    if validated is not None and validated is not True:
        abort(400, description="validated can only be set to true")
    c = ctx()
    if enabled is not None:
        profiles.set_enabled(c.engine, c.redis, c.keys, profile_id, enabled)
    if validated:
        profiles.validate_profile(c.engine, profile_id, g.user.id)
    return profile(profile_id)


@bp.route("/profiles/<int:profile_id>", methods=["DELETE"])
@require("operator")
def delete(profile_id: int) -> Any:
    training.detail_or_404(ctx(), profile_id)
    c = ctx()
    profiles.delete_profile(c.engine, c.redis, c.keys, profile_id)
    return Response(status=204)
