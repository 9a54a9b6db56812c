"""Prometheus and VictoriaMetrics: ``/api/v1/query_range`` with PromQL.

Each series of the result becomes a metric named like flux names remote_write
series: ``__name__`` then the labels sorted, ``.label=value`` each (values made
name-safe), and keeps its label set (``options.drop_labels`` left out) in the label
index (skyline.store.labels).  The window is aligned to ``step`` so that every pass evaluates at the
same instants, and split so that no request asks for more than ``max_steps``
points per series (Prometheus refuses more than 11,000).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from skyline.ingest.vista.sources import (
    SOURCES,
    PulledSeries,
    Source,
    SourceError,
    expand_env,
    get_json,
    max_bytes,
    number,
    safe_name,
)
from skyline.runtime.http_deadline import watched_session
from skyline.settings.vista import VistaSource


class PromOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_labels: list[str] = Field(default_factory=list)  # labels left out of the name
    max_steps: int = Field(10000, ge=1, le=11000)
    bearer_token_env: str = ""  # variable holding a bearer token


def series_name(labels: dict[str, str], drop: set[str]) -> str:
    name = labels.get("__name__", "")
    parts = sorted(
        (k, safe_name(v)) for k, v in labels.items() if k != "__name__" and k not in drop and v
    )
    body = ".".join(f"{k}={v}" for k, v in parts)
    if name and body:
        return f"{name}.{body}"
    return name or body or "value"


@SOURCES.register("prometheus")
class Prometheus(Source):
    kind = "prometheus"
    Options = PromOptions
    overlap = 120.0  # a scrape lands after its timestamp; VictoriaMetrics hides the last 30 s
    extra_params: ClassVar[dict[str, str]] = {}

    def __init__(self, cfg: VistaSource, options: Any) -> None:
        super().__init__(cfg, options)
        self.url = expand_env(cfg.url).rstrip("/") + "/api/v1/query_range"
        self.session = watched_session()  # its requests cut at their deadline
        if options.bearer_token_env:
            token = expand_env("${" + options.bearer_token_env + "}")
            self.session.headers["Authorization"] = f"Bearer {token}"

    def fetch(self, start: float, end: float) -> list[PulledSeries]:
        step = self.cfg.step
        lo = math.ceil(start / step) * step
        hi = math.floor(end / step) * step
        out: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        label_sets: dict[str, dict[str, str]] = {}
        total = 0
        span = step * (self.options.max_steps - 1)
        deadline = self.deadline()
        t = lo
        while t <= hi:
            chunk_end = min(hi, t + span)
            left = deadline - time.monotonic()
            if left <= 0:
                raise SourceError("timeout", f"no complete answer within {self.cfg.timeout:g}s")
            doc = get_json(
                self.session, "GET", self.url, timeout=left, max_bytes=max_bytes(self.cfg),
                watchdog=self.watchdog,
                params={"query": self.cfg.query, "start": t, "end": chunk_end, "step": step,
                        **self.extra_params},
            )  # fmt: skip
            for name, labels, ts, vs in self._parse(doc):
                if label_sets.setdefault(name, labels) != labels:
                    # a series whose name is another's once its label values are made
                    # safe (path="/a?b" and "/a&b"): refused, not merged into it
                    self.rejected["name_collision"] += len(ts)
                    continue
                total += len(ts)
                self.check_size(total)
                entry = out.setdefault(name, ([], []))
                entry[0].append(ts)
                entry[1].append(vs)
            t = chunk_end + step
        return [
            PulledSeries(name, np.concatenate(ts), np.concatenate(vs), label_sets[name] or None)
            for name, (ts, vs) in out.items()
        ]

    def _parse(self, doc: Any) -> list[tuple[str, dict[str, str], np.ndarray, np.ndarray]]:
        if not isinstance(doc, dict) or doc.get("status") != "success":
            error = doc.get("error") if isinstance(doc, dict) else None
            if error:
                raise SourceError("query", str(error)[:300])
            raise SourceError("malformed", "not a Prometheus API answer")
        data = doc.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise SourceError("malformed", "expected a matrix result (query_range)")
        result = data.get("result")
        if not isinstance(result, list):
            raise SourceError("malformed", "data.result is not a list")
        drop = set(self.options.drop_labels)
        out = []
        for item in result:
            try:
                values = item["values"]
                # as text: a label value sent as a number would fail the naming below
                labels = {str(k): str(v) for k, v in item["metric"].items()}
                ts = np.array([float(p[0]) for p in values], dtype=np.float64)
                vs = np.array([number(p[1]) for p in values], dtype=np.float64)
                kept = {str(k): str(v) for k, v in labels.items() if k not in drop and v}
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                raise SourceError("malformed", "a series without metric/values pairs") from None
            out.append((series_name(labels, drop), kept, ts, vs))
        return out

    def close(self) -> None:
        super().close()
        self.session.close()


@SOURCES.register("victoriametrics")
class VictoriaMetrics(Prometheus):
    """VictoriaMetrics answers the same query_range API."""

    kind = "victoriametrics"
    # its response cache would hide points that arrived late (backfilled, caught up)
    extra_params: ClassVar[dict[str, str]] = {"nocache": "1"}
