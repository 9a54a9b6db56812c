"""gunicorn's entry point: ``skyline.webapp.wsgi:app`` (one app per worker process)."""

from __future__ import annotations

import os

from flask import Flask

from skyline.runtime.daemon import setup_logging
from skyline.settings import load_settings
from skyline.webapp.app import create_app
from skyline.webapp.context import make_context


def build() -> Flask:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    settings = load_settings()
    setup_logging(settings, "webapp")
    return create_app(make_context(settings))


app = build()
