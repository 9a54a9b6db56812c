"""The Skyline flux API: ``GET /flux/metric_data`` and ``POST /flux/metric_data_post``.

Kept compatible with earthgecko Skyline's flux so existing clients work unchanged;
see docs/flux.md for the request and response formats.
"""

from __future__ import annotations

from flask import Flask, Response, request

from skyline.ingest.flux import deadline
from skyline.ingest.flux.app import Context, json_response, prefixed, truthy
from skyline.ingest.flux.influx import telegraf_points
from skyline.ingest.flux.limits import HttpError
from skyline.ingest.flux.writer import Points, Rejects
from skyline.runtime.daemon import OUTAGES


def register(app: Flask, ctx: Context) -> None:
    @app.get("/flux/metric_data")
    def metric_data() -> Response:
        args = request.args
        if args.get("status") == "true":
            return status(ctx)
        key_id, namespace = ctx.authenticate()
        missing = [p for p in ("metric", "timestamp", "value") if not args.get(p)]
        if missing:
            raise HttpError(
                400, "missing_parameter", f"missing parameter(s): {', '.join(missing)}",
                missing=missing,
            )  # fmt: skip
        points, rejects = Points(), Rejects()
        ctx.ingest.check(
            points, rejects, prefixed(namespace, args["metric"]), args["timestamp"],
            args["value"], fill=truthy(args.get("fill")),
        )  # fmt: skip
        ctx.admit(key_id, 1)
        return ctx.finish(points, rejects, test=truthy(args.get("test")))

    @app.post("/flux/metric_data_post")
    def metric_data_post() -> Response:
        # A key in the header is checked before the body is read.
        early = ctx.authenticate() if request.headers.get("key") else None
        data = ctx.json_body()
        if not isinstance(data, dict):
            raise HttpError(400, "not_an_object", "body must be a JSON object")
        key_id, namespace = early or ctx.authenticate(data.get("key"))
        test = truthy(data.get("test")) or truthy(request.headers.get("test"))
        if truthy(request.headers.get("telegraf")) or _looks_like_telegraf(data):
            points, rejects = telegraf_points(
                ctx, data, namespace, request.headers.get("prefix", "")
            )
            ctx.admit(key_id, len(points) + len(rejects))
            return ctx.finish(points, rejects, test=test)
        metrics = data.get("metrics", [data])
        if not isinstance(metrics, list):
            raise HttpError(400, "metrics_not_a_list", "'metrics' must be a list of objects")
        ctx.admit(key_id, len(metrics))
        return ctx.finish(*_check_all(ctx, metrics, namespace, truthy(data.get("fill"))), test=test)


def _check_all(
    ctx: Context, metrics: list[object], namespace: str, fill: bool
) -> tuple[Points, Rejects]:
    points, rejects = Points(), Rejects()
    now = ctx.ingest.clock()
    for i, item in enumerate(metrics):
        deadline.check(i)
        if not isinstance(item, dict):
            rejects.add("not_an_object", i)
            continue
        missing = [f for f in ("metric", "timestamp", "value") if f not in item]
        if missing:
            rejects.add(f"missing_{missing[0]}", i, item.get("metric"))
            continue
        ctx.ingest.check(
            points, rejects, prefixed(namespace, item["metric"]), item["timestamp"],
            item["value"], fill=fill or truthy(item.get("fill")), where=i, now=now,
        )  # fmt: skip
    return points, rejects


def _looks_like_telegraf(data: dict) -> bool:
    if "fields" in data and "name" in data:
        return True
    metrics = data.get("metrics")
    return (
        isinstance(metrics, list)
        and bool(metrics)
        and isinstance(metrics[0], dict)
        and "fields" in metrics[0]
    )


def status(ctx: Context) -> Response:
    """Health probe: 204 when the store answers, 503 otherwise."""
    try:
        ctx.redis.ping()
    except OUTAGES:
        return json_response(503, {"error": "the store is unavailable", "reason": "unavailable"})
    return Response(status=204)
