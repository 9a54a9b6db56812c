"""Pages of ionosphere's features profiles: train one from an anomaly, show one,
enable/disable and validate it.  A metric's profiles are listed on its page in
``pages.metrics``; an anomaly's matches on its page."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from skyline.analysis.ionosphere import profiles
from skyline.webapp import graph_range, queries, training
from skyline.webapp.auth import ctx, require

bp = Blueprint("profiles", __name__)
TOP_FEATURES = 12


@bp.route("/anomaly/<int:anomaly_id>/train", methods=["POST"])
@require("operator")
def train(anomaly_id: int) -> Any:
    if queries.find_anomaly_id(ctx(), str(anomaly_id)) is None:
        abort(404, description="no such anomaly")
    label = request.form.get("label", "").strip()[:255] or None
    try:
        profile_id = training.train_anomaly(ctx(), anomaly_id, g.user.id,
                                            learn=request.form.get("learn") == "1", label=label)  # fmt: skip
    except training.ProfileError as exc:
        flash(f"Not trained: {exc}")
        return redirect(url_for("pages.anomaly", ref=anomaly_id))
    flash(f"Trained as normal: features profile {profile_id}. Matching anomalies will not alert.")
    return redirect(url_for("profiles.profile", profile_id=profile_id))


@bp.route("/profile/<int:profile_id>")
def profile(profile_id: int) -> Any:
    p = training.detail_or_404(ctx(), profile_id)
    features = sorted(p["features"].items())
    at = int(p["anomaly_timestamp"])
    try:  # the stored window; from/until in the URL zoom into it
        first = int(p["series"][0][0]) if p["series"] else at - int(p["full_duration"])
        span = graph_range.graph_range(request.args, first, at + 60, time.time())
    except queries.BadFilter as exc:
        abort(400, description=str(exc))
    return render_template(
        "profile.html", p=p, features=features, top=TOP_FEATURES, span=span,
        matches=training.profile_matches(ctx(), profile_id),
        children=[r for r in profiles.list_profiles(ctx().engine, p["metric"])
                  if r["parent_id"] == profile_id],
    )  # fmt: skip


@bp.route("/profile/<int:profile_id>/enabled", methods=["POST"])
@require("operator")
def set_enabled(profile_id: int) -> Any:
    training.detail_or_404(ctx(), profile_id)
    enabled = request.form.get("enabled") == "1"
    c = ctx()
    profiles.set_enabled(c.engine, c.redis, c.keys, profile_id, enabled)
    flash(
        f"Profile {profile_id} {'enabled' if enabled else 'disabled (with its learnt profiles)'}."
    )
    return redirect(request.form.get("back") == "metric" and _metric_url(profile_id)
                    or url_for("profiles.profile", profile_id=profile_id))  # fmt: skip


@bp.route("/profile/<int:profile_id>/validate", methods=["POST"])
@require("operator")
def validate(profile_id: int) -> Any:
    training.detail_or_404(ctx(), profile_id)
    profiles.validate_profile(ctx().engine, profile_id, g.user.id)
    flash(f"Profile {profile_id} validated.")
    return redirect(url_for("profiles.profile", profile_id=profile_id))


def _metric_url(profile_id: int) -> str:
    return url_for("pages.metrics", name=training.detail_or_404(ctx(), profile_id)["metric"])
