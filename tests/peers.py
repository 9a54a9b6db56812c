"""One way for a test to say that a peer it needs (MariaDB, Chromium, Prometheus,
carbon-relay, memcached, ...) is missing.

Outside CI the test is skipped, saying what to install.  Under ``CI=true`` the test
fails instead: CI installs every peer (``.ci/run``), so a missing one is a broken CI
machine, and a green run must not hide whole groups of skipped tests.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require(peer: str, reason: str) -> NoReturn:
    """``peer`` is missing: skip the test, or fail it under ``CI=true``."""
    message = f"{peer} is missing: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: every peer must be installed)", pytrace=False)
    pytest.skip(message)
