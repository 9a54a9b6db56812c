"""``skyline vista backfill`` and ``skyline import``: the last day into the live store,
older history into the rollups mirage reads, nothing stored twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa

from skyline.cli.main import main
from skyline.settings import load_settings
from skyline.store.rollups import Rollups
from tests.integration.vista_fixtures import Harness, vista_conf

DAY = 86400


def _conf(tmp_path: Path, redis_url: str, *sources: dict[str, object]) -> Path:
    extra = f'[skyline]\nvar_dir = "{tmp_path / "var"}"\n[redis]\nurl = "{redis_url}"\n'
    return vista_conf(tmp_path / "s.conf", *sources, extra=extra)


def test_backfill_30_days(tmp_path: Path, redis_url: str, capsys) -> None:
    now = int(time.time()) // 600 * 600
    # the rollups keep 30 days: the oldest row an hour inside them, whatever the run takes
    first = now - 30 * DAY + 3600
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE sales (ts INTEGER, value REAL)"))
        conn.execute(sa.text("INSERT INTO sales VALUES (:t, :v)"),
                     [{"t": t, "v": float(t % 7)} for t in range(first, now, 300)])  # fmt: skip
    engine.dispose()
    conf = _conf(tmp_path, redis_url, {
        "name": "sales", "kind": "sql", "url": url, "namespace": "shop",
        "query": "SELECT ts, value FROM sales WHERE ts > :start AND ts <= :end",
        "options": {"time_type": "epoch"},
    })  # fmt: skip
    assert (
        main(["--config", str(conf), "vista", "backfill", "sales", "--days", "31", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["live"] + out["rolled_up"] == (now - first) // 300 and out["rejected"] == {}
    assert DAY // 300 - 3 <= out["live"] <= DAY // 300  # the last day (of the clock's now)
    h = Harness(load_settings(conf))
    res = h.settings.mirage.rollup_resolution
    history = Rollups(h.store, res).history("shop.value", first, now)
    assert len(history) >= (now - first) // res - 2
    # again: nothing is stored twice
    assert (
        main(["--config", str(conf), "vista", "backfill", "sales", "--days", "31", "--json"]) == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["live"] == 0 and again["rollup_buckets"] == 0
    assert h.raw_count("shop.value") == out["live"]
    h.close()


def test_import_csv(tmp_path: Path, redis_url: str, capsys) -> None:
    now = int(time.time()) // 60 * 60
    csv = tmp_path / "x.csv"
    rows = ["timestamp,value"] + [f"{t},{t % 5}" for t in range(now - 2 * DAY, now, 60)]
    csv.write_text("\n".join(rows) + "\n")
    conf = _conf(tmp_path, redis_url)
    assert main(["--config", str(conf), "import", str(csv), "--metric", "up.load", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 2 * DAY // 60 == out["live"] + out["rolled_up"]
    assert DAY // 60 - 3 <= out["live"] <= DAY // 60
    assert main(["--config", str(conf), "import", str(csv), "--metric", "up.load", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["live"] == 0 and again["already_stored"] == out["live"]
    h = Harness(load_settings(conf))
    assert h.raw_count("up.load") == out["live"]
    h.close()
