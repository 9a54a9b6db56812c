"""Every ``[[vista]]`` example in docs/vista.md is copy-paste valid: it loads as settings
and its source kind builds it (options validated, environment references expanded)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skyline.ingest.vista.sources import SOURCES, build
from skyline.settings import load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "vista.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
SECRETS = {"SHOP_DB_PASSWORD": "pw", "PROM_TOKEN": "t", "GRAPHITE_PASSWORD": "pw",
           "MLFLOW_TOKEN": "t"}  # fmt: skip


def test_one_example_per_source_kind() -> None:
    SOURCES.load()
    kinds = {m.group(1) for b in BLOCKS for m in re.finditer(r'kind = "(\w+)"', b)}
    assert kinds == set(SOURCES.names())


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example{i}" for i in range(len(BLOCKS))])
def test_example_loads_and_builds(block: str, tmp_path: Path, monkeypatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    conf = tmp_path / "skyline.conf"
    conf.write_text(block)
    settings = load_settings(conf, env={"SKYLINE__SKYLINE__VAR_DIR": str(tmp_path / "var")})
    (cfg,) = settings.vista
    assert "{var_dir}" not in cfg.url
    SOURCES.load()
    build(cfg).close()
