"""``/api/docs``: the API reference, rendered in the browser from the OpenAPI document
(``/api/v1/openapi.json``) by Swagger UI, vendored in ``static/vendor/`` (no CDN).
"Try it out" calls the API with the page's login session, its CSRF token added by
``static/api_docs.js``, or with a token entered under "Authorize"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

bp = Blueprint("api_docs", __name__)
PATH = "/api/docs"


@bp.route(PATH)
def docs() -> Any:
    return render_template("api_docs.html")
