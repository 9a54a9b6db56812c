"""The OpenAPI document matches the /api/v1 routes exactly, and is well-formed."""

from __future__ import annotations

import json

import pytest
import redis

from skyline.db import make_engine
from skyline.settings import load_settings
from skyline.webapp import openapi
from skyline.webapp.app import create_app
from skyline.webapp.context import Context


@pytest.fixture
def app(tmp_path):
    settings = load_settings(env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path)})
    client = redis.Redis(host="127.0.0.1", port=1)  # never connected by these tests
    ctx = Context(settings, make_engine(f"sqlite:///{tmp_path}/x.db"), client, None, None)  # type: ignore[arg-type]
    return create_app(ctx)


def test_document_matches_the_url_map(app):
    missing, stale = openapi.undocumented(app)
    assert not missing, f"routes not in openapi.py: {sorted(missing)}"
    assert not stale, f"documented operations without a route: {sorted(stale)}"
    assert len(openapi.routes(app)) >= 10


def test_served_document_is_the_checked_one(app):
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc == json.loads(json.dumps(openapi.document()))
    assert doc["openapi"].startswith("3.1")


def test_references_resolve_and_path_parameters_are_declared():
    doc = openapi.document()
    text = json.dumps(doc)
    for ref in set(__import__("re").findall(r'"\$ref": "#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in doc["components"][ref[0]], ref
    for path, ops in doc["paths"].items():
        names = set(__import__("re").findall(r"{(\w+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, method)
            assert op["responses"], (path, method)
