"""Fixtures of the browser tests: one headless Chromium per module, and where
screenshots go (docs/img/ with ``SKYLINE_SCREENSHOTS=1``, else the test's tmp dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.browser import ARGS, CHROMIUM, ROOT, sync_api


@pytest.fixture(scope="module")
def browser():
    with sync_api().sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    return ROOT / "docs" / "img" if os.environ.get("SKYLINE_SCREENSHOTS") else tmp_path
