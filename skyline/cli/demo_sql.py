"""The demo's pulled source: a business metric in a SQL table, pulled by vista.

``skyline demo`` (one line in demo.py) starts ``run`` in a thread.  It fills the
SQLite file ``var_dir/demo-shop.sqlite``, table ``demo_orders (ts, name, region,
value)``, with orders per minute of two regions: ``backfill_hours`` of history at
once, then a row per region each minute.  About ``first_anomaly`` seconds in, the
orders of region ``eu`` collapse to ``COLLAPSE`` of normal for ``ANOMALY_MINUTES``
minutes (a checkout outage), then again every ``every`` seconds.

The embedded defaults' ``[[vista]]`` source ``demo-orders`` (``DEMO_SOURCE``) pulls
the table every minute with ``region`` as a label column, so the store gets the
labelled metrics ``demo.orders_per_minute.region=eu`` and ``...region=us``.  After
writing the history, the demo deletes that source's cursor, so vista's next pass
loads the history as a first pass does (``backfill_days``), as ``skyline vista
backfill`` would.  Until the demo runs the table does not exist and the source
answers no rows (``options.missing_ok``).
"""

from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from skyline.db.engine import StopFlag
from skyline.settings import Settings
from skyline.settings.vista import DEMO_DB_FILE, DEMO_SOURCE

SOURCE_NAME = DEMO_SOURCE["name"]
DB_FILE = DEMO_DB_FILE
METRIC = "orders_per_minute"
# mean orders per minute.  With 120 for eu, the collapse near the daily wave's trough
# (72 +- 8.5 orders falling to about 1) was only about six times the detector's spread
# (learned over the whole wave, 6 h of history): it scored 0.71-0.96 over
# 720 times of day and four noise seeds and was missed at up to 14 of them at the
# threshold 0.72 (0.75 since).  At 600 it scores 0.87-0.97 (SpikeLevel version 9;
# 0.89-0.97 with version 8; docs/vista.md).
REGIONS = {"eu": 600.0, "us": 400.0}
ANOMALY_MINUTES = 6
# orders left during a collapse (at 5 % of 120 a minute the detector missed it at 10 of
# 720 times of day; 2 % since)
COLLAPSE = 0.02


def orders(region: str, minute: int, rng: random.Random) -> float:
    """Normal orders in that minute: a daily wave with Poisson-like noise."""
    mean = REGIONS[region] * (1 + 0.4 * math.sin(2 * math.pi * (minute * 60 % 86400) / 86400))
    return float(max(0, round(rng.gauss(mean, math.sqrt(mean)))))


class DemoOrders:
    def __init__(self, settings: Settings, *, backfill_hours: float = 6.0,
                 first_anomaly: float = 300.0, every: float = 1800.0,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.path = Path(settings.var_path) / DB_FILE
        self.settings = settings
        self.backfill_hours, self.first_anomaly, self.every = backfill_hours, first_anomaly, every
        self.rng = rng or random.Random()
        self.last_minute: int | None = None
        self.started = 0.0
        self.cursor_reset = False

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS demo_orders (ts INTEGER NOT NULL, name TEXT "
                   "NOT NULL, region TEXT NOT NULL, value REAL NOT NULL)")  # fmt: skip
        db.execute("CREATE INDEX IF NOT EXISTS demo_orders_ts ON demo_orders (ts)")
        return db

    def anomalous(self, minute: int) -> bool:
        """Whether region eu's orders collapse in that minute."""
        since = minute * 60 - (self.started + self.first_anomaly)
        return since >= 0 and since % self.every < ANOMALY_MINUTES * 60

    def value(self, region: str, minute: int) -> float:
        """The orders of ``region`` in that minute, the collapse included (regions in
        ``REGIONS`` order, minute by minute: the noise comes from one generator)."""
        value = orders(region, minute, self.rng)
        if region == "eu" and self.anomalous(minute):
            value = float(round(value * COLLAPSE))
        return value

    def write(self, now: float) -> int:
        """Rows for every whole minute up to ``now`` not written yet; the first call
        writes the history (and resets vista's cursor of the source)."""
        first = self.last_minute is None
        end = int(now // 60) - 1  # the last whole minute
        if first:
            self.started = now
            with self.connect() as db:
                newest = db.execute("SELECT MAX(ts) FROM demo_orders").fetchone()[0]
            start = int((now - self.backfill_hours * 3600) // 60)
            self.last_minute = max(start - 1, int(newest // 60) if newest else start - 1)
        assert self.last_minute is not None
        rows = [
            (minute * 60, METRIC, region, self.value(region, minute))
            for minute in range(self.last_minute + 1, end + 1)
            for region in REGIONS
        ]
        if rows:
            with self.connect() as db:
                db.executemany("INSERT INTO demo_orders VALUES (?, ?, ?, ?)", rows)
            self.last_minute = end
        if not self.cursor_reset:
            self.reset_cursor()
            self.cursor_reset = True
        return len(rows)

    def reset_cursor(self) -> None:
        """Make vista's next pass of the source a first pass (it loads the history)."""
        from skyline.store.connection import connect
        from skyline.store.keys import RedisKeys

        client = connect(self.settings, start_embedded=False)
        client.delete(RedisKeys(self.settings.redis.prefix).vista_cursor(SOURCE_NAME))


def run(settings: Settings, stop: StopFlag, say: Callable[[str], object],
        backfill_hours: float = 6.0, interval: float = 10.0) -> threading.Thread:  # fmt: skip
    """Fill the demo table in a thread until ``stop`` is set; returns the thread."""
    demo = DemoOrders(settings, backfill_hours=backfill_hours)

    def loop() -> None:
        announced = False
        while not stop.is_set():
            try:
                n = demo.write(time.time())
                if not announced:
                    say(f"wrote {n} rows of orders per minute to {demo.path} (table demo_orders),"
                        f" pulled by vista's source {SOURCE_NAME}")  # fmt: skip
                    announced = True
            except (OSError, sqlite3.Error, redis.RedisError) as exc:  # retried next tick
                say(f"demo orders table: {type(exc).__name__}: {exc}")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="demo-orders", daemon=True)
    thread.start()
    return thread
