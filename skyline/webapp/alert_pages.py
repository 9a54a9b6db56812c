"""The Alerts page: the [[alerts]] and [[boundary]] rules, every configured channel with
its recent delivery counters, and a "Send a test alert" button per channel (operators
and admins) that delivers one alert through the channel's real code and shows the
outcome: delivered, or the error the channel gave.  Each test is audited."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, g, render_template, request

from skyline.alerting import sample_alert
from skyline.webapp import audit, queries
from skyline.webapp.auth import ctx, require
from skyline.webapp.pages import channel_counters

bp = Blueprint("alert_pages", __name__)


def _page(outcome: sample_alert.Outcome | None = None, status: int = 200) -> Any:
    settings = ctx().settings
    counters = channel_counters(queries.daemon_status(ctx()))
    return render_template(
        "alerts.html", channels=sample_alert.configured_channels(settings),
        counters=counters, rules=settings.alerts, boundary=settings.boundary,
        interval=settings.skyline.counters_interval, outcome=outcome,
    ), status  # fmt: skip


@bp.route("/alerts")
def alerts() -> Any:
    return _page()


@bp.route("/alerts/test", methods=["POST"])
@require("operator")
def test_alert() -> Any:
    channel = request.form.get("channel", "")[:300]
    if channel not in sample_alert.configured_channels(ctx().settings):
        abort(400, description=f"{channel!r} is not a configured alert channel; "
                               "the Alerts page lists them")  # fmt: skip
    outcome = sample_alert.send(ctx().settings, channel, g.user.username, time.time())
    result = "delivered" if outcome.delivered else "failed"
    audit.record(ctx().engine, g.user, "alert.test", channel, f"{result}: {outcome.message}",
                 request.remote_addr)  # fmt: skip
    return _page(outcome)
