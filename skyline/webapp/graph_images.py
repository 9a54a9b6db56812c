"""``GET /graphs/<token>.png``: an alert's graph, without login, to whoever holds the link.

Slack's incoming webhook cannot upload a file, so the alerters store the graph under a
capability token (``skyline.store.graph_images``) and the message's image block links
here; Slack's servers fetch the image.  Everything under ``/graphs/`` is public and
answers either the PNG or 404: a malformed token (wrong length, characters outside the
URL-safe alphabet, ``..``, empty), an unknown one and an expired one look the same, and
no Redis key is built from a token that is not of the exact shape.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort

from skyline.store import graph_images
from skyline.webapp.auth import ctx

bp = Blueprint("graph_images", __name__)  # its endpoint is in auth.PUBLIC_ENDPOINTS


@bp.route("/graphs/", defaults={"name": ""})
@bp.route("/graphs/<path:name>")
def graph(name: str) -> Response:
    token = name.removesuffix(".png")
    found = graph_images.load(ctx().redis, ctx().keys, token) if name.endswith(".png") else None
    if found is None:
        abort(404, description="no such graph, or its link has expired")
    png, ttl = found
    resp = Response(png, mimetype="image/png")
    # a token's image never changes: caches may keep it for the rest of its life
    resp.headers["Cache-Control"] = f"public, max-age={ttl}, immutable"
    resp.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # shown by Slack's clients
    return resp
