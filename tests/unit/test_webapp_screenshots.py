"""docs/webapp.md shows a screenshot of every page, and each is written by a browser test
(``SKYLINE_SCREENSHOTS=1``), so the pictures can be re-taken rather than drawn by hand."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "webapp.md"
PAGES = {  # every page of the web UI -> its screenshot
    "login": "webapp-login.png", "now": "webapp-now.png", "anomalies": "webapp-anomalies.png",
    "anomaly": "webapp-anomaly.png", "metrics": "webapp-metrics.png",
    "status": "webapp-status.png", "profile": "webapp-profile.png",
    "alerts": "webapp-alerts.png", "users": "webapp-users.png", "tokens": "webapp-tokens.png",
    "api docs": "webapp-api-docs.png", "error": "webapp-error.png",
}  # fmt: skip


def test_every_page_has_a_screenshot_in_the_doc_taken_by_a_test():
    shown = set(re.findall(r"!\[[^\]]*\]\(img/([^)]+)\)", DOC.read_text()))
    missing = {page: png for page, png in PAGES.items() if png not in shown}
    assert not missing, f"docs/webapp.md lacks screenshots of {missing}"
    tests = "\n".join(p.read_text() for p in (ROOT / "tests" / "e2e").glob("test_*.py"))
    for png in shown:
        assert (ROOT / "docs" / "img" / png).is_file(), png
        assert f'"{png}"' in tests, f"no browser test writes docs/img/{png}"
