"""The flux HTTP app (Flask): shared request context, errors as JSON, counters.

``create_app`` builds the app from settings and the services it writes to; it is
used by the gunicorn workers (``skyline.ingest.flux.wsgi``) and by the threaded server
the daemon runs in tests.  Routes live in ``api`` (Skyline flux API),
``prometheus`` (remote_write) and ``influx`` (line protocol, telegraf JSON).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from skyline.ingest.flux import deadline
from skyline.ingest.flux.keys import KeyRing
from skyline.ingest.flux.limits import HttpError, RateLimiter, check_count, decode_body, read_body
from skyline.ingest.flux.writer import Ingest, Points, Rejects
from skyline.runtime.daemon import OUTAGES, Counters
from skyline.settings import FluxSection

log = logging.getLogger("skyline.flux")
TRUE = ("true", "1", "yes", "True")


@dataclass
class Context:
    """What every route needs; one per app (per gunicorn worker)."""

    config: FluxSection
    ingest: Ingest
    keys: KeyRing
    limiter: RateLimiter | None
    counters: Counters
    redis: redis.Redis

    def authenticate(self, body_key: object = None) -> tuple[int, str]:
        """(key id, namespace) from header ``key``, ``Authorization: Bearer|Token <key>``
        (Prometheus ``authorization``, InfluxDB v2 clients), basic auth's password, query
        ``key`` or the JSON ``key``, in that order."""
        key = request.headers.get("key") or _authorization_key() or request.args.get("key")
        if not key and isinstance(body_key, str):
            key = body_key
        if not key:
            if not self.config.require_key:
                return 0, ""
            raise HttpError(
                401, "missing_key", "an API key is required: send it in the 'key' header "
                "(or the key query parameter / JSON field)",
            )  # fmt: skip
        found = self.keys.lookup(key)
        if found is None:
            raise HttpError(401, "invalid_key", "unknown or revoked API key")
        return found

    def body(self) -> bytes:
        raw = read_body(request.stream, request.content_length, self.config.max_body_bytes)
        return decode_body(
            raw, request.headers.get("Content-Encoding", ""), self.config.max_decompressed_bytes
        )

    def json_body(self) -> Any:
        data = self.body()
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}"[:300]) from None

    def admit(self, key_id: int, n: int) -> None:
        """Refuse a request with too many datapoints, or over the key's rate."""
        check_count(n, self.config.max_metrics_per_request)
        if self.limiter is not None:
            self.limiter.charge(key_id, n)

    def finish(
        self, points: Points, rejects: Rejects, *, test: bool = False, all_bad: int = 400
    ) -> Response:
        """Write and answer: 204 all stored, 207 some, ``all_bad`` none, 200 test report."""
        stored = self.ingest.write(points, rejects, test=test)
        if test:
            return json_response(
                200, {"test": True, "accepted": len(points), "would_ingest": points.listing(),
                      **rejects.summary()},
            )  # fmt: skip
        if not rejects:
            return Response(status=204)
        body = {"accepted": stored, **rejects.summary()}
        if stored:
            return json_response(207, body)
        return json_response(
            all_bad, {"error": "no valid datapoints", "reason": "invalid_datapoints", **body}
        )


def _authorization_key() -> str | None:
    try:
        auth = request.authorization
    except ValueError:  # a Basic header that is not UTF-8: no key (a 401), not a 500
        return None
    if auth is None:
        return None
    if auth.type == "basic":
        return auth.password or None
    return auth.token or None


def json_response(status: int, body: dict[str, object]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def prefixed(namespace: str, name: object) -> object:
    if namespace and isinstance(name, str):
        return f"{namespace}.{name}"
    return name


def truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value in TRUE)


def create_app(ctx: Context, watchdog: deadline.Watchdog | None = None) -> Flask:
    """The app; with ``watchdog`` (gunicorn workers), requests that overrun twice the
    time limit end the worker (``deadline``)."""
    from skyline.ingest.flux import api, influx, prometheus

    app = Flask("skyline.flux")

    @app.before_request
    def clock_starts() -> None:
        deadline.start(ctx.config.request_time_limit)
        if watchdog is not None:
            watchdog.begin()

    if watchdog is not None:

        @app.teardown_request
        def clock_stops(exc: BaseException | None) -> None:
            watchdog.end()

    app.config["MAX_CONTENT_LENGTH"] = None  # bodies are capped by read_body
    app.extensions["flux"] = ctx
    api.register(app, ctx)
    prometheus.register(app, ctx)
    influx.register(app, ctx)

    @app.errorhandler(HttpError)
    def refused(exc: HttpError) -> Response:
        ctx.counters.inc(f"refused.{exc.reason}")
        resp = json_response(exc.status, exc.body())
        if "retry_after" in exc.extra:
            resp.headers["Retry-After"] = str(exc.extra["retry_after"])
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return json_response(
            exc.code or 500, {"error": exc.description or exc.name, "reason": exc.name}
        )

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Response:
        if isinstance(exc, OUTAGES):
            ctx.counters.inc("outages")
            log.warning("store unavailable: %s", str(exc)[:200])
            resp = json_response(
                503, {"error": "the store is unavailable; retry", "reason": "unavailable"}
            )
            resp.headers["Retry-After"] = "5"
            return resp
        ctx.counters.inc("errors")
        log.exception("request %s %s failed", request.method, request.path)
        return json_response(500, {"error": "internal error", "reason": "internal"})

    @app.after_request
    def count(resp: Response) -> Response:
        ctx.counters.inc(f"responses.{resp.status_code}")
        return resp

    return app
