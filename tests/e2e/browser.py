"""Driving Debian's headless Chromium with Playwright: the ``browser`` and ``shots``
fixtures (tests/e2e/conftest.py) and small page helpers shared by the browser tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.peers import require

CHROMIUM = (
    os.environ.get("SKYLINE_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]

# Fraction of a canvas's pixels that are not background: 0 for a blank chart.
INK = """(sel) => {
  const c = document.querySelector(sel + ' canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) ink++;
  }
  return ink / (d.length / 4);
}"""


def sync_api():
    """Playwright's sync API, or the test is skipped saying what is missing."""
    try:
        import playwright.sync_api as api
    except ImportError:
        require("playwright", "Playwright for Python is not installed (pip install playwright)")
    if CHROMIUM is None:
        require(
            "chromium", "no chromium binary (apt-get install chromium, or set SKYLINE_CHROMIUM)"
        )
    return api


def shot(page, path: Path, full_page: bool = False) -> None:
    """A screenshot; for docs/img/ reduced to a small palette PNG."""
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("SKYLINE_SCREENSHOTS"):
        from PIL import Image

        with Image.open(path) as img:
            small = img.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)


def new_page(browser):
    """A fresh context and page that collects console errors, page errors and dialogs."""
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append("dialog: " + d.message), d.dismiss()))
    return context, page, problems


def login(page, base: str, user: str, password: str) -> None:
    """Log in on the login form the page shows, and wait until the page it leads to has
    replaced it (a click alone returns before the navigation: a test that read the next
    page at once sometimes read the login form)."""
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.locator("form.login").wait_for(state="detached", timeout=30_000)
