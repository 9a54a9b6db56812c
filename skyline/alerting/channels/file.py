"""file channel: each alert appended as one JSON object a line to a local file.

It needs no server, account or network, so it always works on one machine: the demo's
default ``[[alerts]]`` rule (``skyline demo``, ``make run``) alerts here, and
``tail -f var/log/alerts.jsonl`` shows the alerts as they are delivered.  A log
shipper (Filebeat, Vector, fluent-bit) can forward the file.

A relative ``path`` is resolved against the working directory the alerters start in
(the one ``[skyline] var_dir = "var"`` is relative to).  The directory is created if
missing; a write that fails (full disk, permissions) is retried like any transient
failure.  A line is written with one ``write`` call in append mode, so two alerters
appending at once never interleave within a line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from skyline.alerting.base import Alert, DeliveryError, Progress
from skyline.alerting.channels import ChannelSpec, register
from skyline.settings.base import Section, give_up_after, key


class FileChannel(Section):
    """Alerts appended to a local file as JSON lines: [alerters.file]."""

    path: str = key(
        "var/log/alerts.jsonl",
        "File each alert is appended to, one JSON object a line (created with its directory).",
        "path",
        min_length=1,
    )
    give_up_after: float = give_up_after()


def record(alert: Alert, now: float) -> dict[str, object]:
    """The JSON object of one alert: what happened, where to look, and why."""
    e = alert.event
    return {
        "delivered_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
        "anomaly": e.id,
        "metric": e.metric,
        "value": e.value,
        "timestamp": e.timestamp,
        "time": alert.when,
        "source": e.source,
        "rule": alert.rule_pattern,
        "triggered": list(e.triggered),
        "scores": {k: v for k, v in e.scores.items() if math.isfinite(v)},  # JSON has no NaN
        "summary": alert.summary(),
        "link": alert.link,
    }


class File:
    name = "file"

    def __init__(self, config: FileChannel, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(config.path).expanduser().absolute()
        self.clock = clock

    def send(self, alert: Alert, progress: Progress) -> None:
        data = (json.dumps(record(alert, self.clock()), separators=(",", ":")) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk or a permission may be fixed: retried
            raise DeliveryError(f"file {self.path}: {exc.strerror or exc}") from None


register(ChannelSpec("file", FileChannel, lambda name, config, timeout: File(config)))
