"""The deployment files say what docs/deploy.md promises: a hardened systemd unit that
systemd itself accepts, a two-stage image with a health check, and a compose file with
every daemon and no password in it (issue 15 item 12)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from skyline.runtime.daemons import MODULES, built
from tests.peers import require

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "etc" / "systemd" / "skyline@.service"


def test_the_systemd_unit_is_hardened_and_watched() -> None:
    text = UNIT.read_text()
    for directive in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "ExecReload=",
                      "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=",
                      "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet="):  # fmt: skip
        assert re.search(rf"^{re.escape(directive)}", text, re.M), directive
    assert "ExecStart=/opt/skyline/.venv/bin/python -m skyline.runtime %i" in text
    # numba's cache must be somewhere the daemons may write (skyline.compiled)
    cache = re.search(r"^Environment=NUMBA_CACHE_DIR=(\S+)$", text, re.M)
    writable = re.search(r"^ReadWritePaths=(\S+)$", text, re.M)
    assert cache and writable and cache.group(1).startswith(writable.group(1) + "/")


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        require("systemd-analyze", "verifies etc/systemd/skyline@.service")
    unit = UNIT.read_text().replace("/opt/skyline/.venv/bin/python", sys.executable)
    unit = unit.replace("/opt/skyline", str(ROOT)).replace("User=skyline", "User=root")
    unit = unit.replace("Group=skyline", "Group=root")
    path = tmp_path / "skyline@thunder.service"
    path.write_text(unit)
    out = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "skyline@thunder.service" not in out.stderr, out.stderr  # no warning about it


def test_the_image_has_two_stages_deps_first_and_a_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM ", text, re.M)
    assert len(stages) == 2, "a build stage with the compiler, and the final image"
    final = text.split("\nFROM ")[-1]
    assert "gcc" not in final and "COPY --from=build" in final
    assert text.index("requirements.txt") < text.index("COPY skyline"), "deps layer first"
    assert re.search(r"^HEALTHCHECK .*skyline status .*--heartbeat", text, re.M | re.S)


def test_compose_runs_every_daemon_and_holds_no_password() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for daemon in built():
        if daemon not in services:
            assert daemon == "crucible", f"{daemon} has no service"  # a command, not a daemon
            continue
        svc = services[daemon]
        assert svc["command"][:4] == ["python", "-m", "skyline.runtime", daemon], daemon
        assert svc["environment"]["SKYLINE_DAEMON"] == daemon, "the health check names it"
        assert daemon in MODULES
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            secret = "PASSWORD" in key and key != "MARIADB_RANDOM_ROOT_PASSWORD"
            credentials = "URL" in key and "@" in str(value)
            if secret or credentials:
                assert "${" in str(value), f"{name}: {key} must come from .env, not the file"
    text = (ROOT / "docker-compose.yml").read_text()
    assert text.count("${SKYLINE_DB_PASSWORD:?") == 2
    assert "SKYLINE_DB_PASSWORD=" in (ROOT / ".env.example").read_text()
