"""The front-end libraries are vendored as package.json says (``npm ci && npm run vendor``):
every file the pages load from static/vendor/ exists with its licence beside it, the
vendor script writes each, and Swagger UI's bundle is the version package.json pins.
The app and the tests never run npm."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "skyline" / "webapp" / "static" / "vendor"
TEMPLATES = ROOT / "skyline" / "webapp" / "templates"


def test_every_vendored_file_a_page_loads_is_there_with_its_licence():
    package = json.loads((ROOT / "package.json").read_text())
    script = package["scripts"]["vendor"]
    loaded = set()
    for template in TEMPLATES.glob("*.html"):
        loaded.update(re.findall(r"filename='vendor/([^']+)'", template.read_text()))
    assert {"uPlot.iife.min.js", "swagger-ui-bundle.js", "swagger-ui.css"} <= loaded
    for name in loaded:
        assert (VENDOR / name).is_file(), name
        assert f"skyline/webapp/static/vendor/{name}" in script or name in script, name
    for licence in ("uPlot.LICENSE", "swagger-ui.LICENSE"):
        assert (VENDOR / licence).stat().st_size > 500, licence
    assert "Apache License" in (VENDOR / "swagger-ui.LICENSE").read_text()
    lock = json.loads((ROOT / "package-lock.json").read_text())
    for name, version in package["devDependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
    pinned = package["devDependencies"]["swagger-ui-dist"]
    assert f'"{pinned}"' in (VENDOR / "swagger-ui-bundle.js").read_text(errors="replace")
