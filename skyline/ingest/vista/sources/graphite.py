"""Graphite: the render API with ``format=json``; the target may use functions
(``sumSeries(...)``, ``aliasByNode(...)``), as earthgecko's vista allowed.

Each returned series becomes a metric named after its ``target`` (made name-safe);
``null`` datapoints (no data in that interval) are left out, so the next pass asks
for them again once the window overlaps them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from skyline.ingest.vista.sources import (
    SOURCES,
    PulledSeries,
    Source,
    SourceError,
    expand_env,
    get_json,
    max_bytes,
    number,
)
from skyline.runtime.http_deadline import watched_session
from skyline.settings.vista import VistaSource


class GraphiteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = ""  # HTTP basic auth, with the password from password_env


@SOURCES.register("graphite")
class Graphite(Source):
    kind = "graphite"
    Options = GraphiteOptions
    overlap: ClassVar[float] = 120.0  # carbon writes an interval after it ends

    def __init__(self, cfg: VistaSource, options: Any) -> None:
        super().__init__(cfg, options)
        self.url = expand_env(cfg.url).rstrip("/") + "/render"
        self.session = watched_session()  # its requests cut at their deadline
        if options.user:
            password = expand_env("${" + cfg.password_env + "}") if cfg.password_env else ""
            self.session.auth = (options.user, password)

    def fetch(self, start: float, end: float) -> list[PulledSeries]:
        params = {"target": self.cfg.query, "from": int(start), "until": int(end),
                  "format": "json"}  # fmt: skip
        doc = get_json(self.session, "GET", self.url, params=params, timeout=self.cfg.timeout,
                       max_bytes=max_bytes(self.cfg), watchdog=self.watchdog)  # fmt: skip
        if not isinstance(doc, list):
            raise SourceError("malformed", "a render answer is a list of series")
        out, total = [], 0
        for item in doc:
            try:
                name, points = str(item["target"]), item["datapoints"]
                pairs = [(float(p[1]), number(p[0])) for p in points if p[0] is not None]
            except (KeyError, TypeError, ValueError, IndexError):
                raise SourceError("malformed", "a series without target/datapoints") from None
            total += len(pairs)
            self.check_size(total)
            arr = np.array(pairs, dtype=np.float64).reshape(-1, 2)
            out.append(PulledSeries(name, arr[:, 0], arr[:, 1]))
        return out

    def close(self) -> None:
        super().close()
        self.session.close()
