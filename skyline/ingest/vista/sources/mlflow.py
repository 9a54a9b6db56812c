"""MLflow: the metric histories of the runs of named experiments, over MLflow's REST API.

``query`` names the experiments (comma-separated).  Each run and metric key is one
metric, ``<experiment>.<run name>.<key>`` (made name-safe), its points the logged
values at their timestamps (ms, stored as seconds: values logged within one second
keep the first).  Running and finished runs are both read; a pass fetches the
history only of the (run, key) pairs whose latest value is inside the window.
"""

from __future__ import annotations

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
)
from skyline.runtime.http_deadline import watched_session
from skyline.settings.vista import VistaSource

API = "/api/2.0/mlflow"


class MlflowOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_runs: int = Field(1000, ge=1)  # runs read per experiment (newest first)
    token_env: str = ""  # variable holding a bearer token


@SOURCES.register("mlflow")
class Mlflow(Source):
    kind = "mlflow"
    Options = MlflowOptions
    overlap: ClassVar[float] = 60.0

    def __init__(self, cfg: VistaSource, options: Any) -> None:
        super().__init__(cfg, options)
        self.base = expand_env(cfg.url).rstrip("/") + API
        self.experiments = [e.strip() for e in cfg.query.split(",") if e.strip()]
        if not self.experiments:
            raise SourceError("config", f"[[vista]] {cfg.name}: query must name experiments")
        self.session = watched_session()  # its requests cut at their deadline
        if options.token_env:
            token = expand_env("${" + options.token_env + "}")
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._ids: dict[str, str] = {}

    def _get(self, method: str, path: str, deadline: float, **kw: Any) -> Any:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SourceError("timeout", f"no complete answer within {self.cfg.timeout:g}s")
        doc = get_json(self.session, method, self.base + path, timeout=left,
                       max_bytes=max_bytes(self.cfg), watchdog=self.watchdog, **kw)  # fmt: skip
        if not isinstance(doc, dict):
            raise SourceError("malformed", f"{path}: not an MLflow answer")
        return doc

    def _experiment_id(self, name: str, deadline: float) -> str:
        if name not in self._ids:
            doc = self._get("GET", "/experiments/get-by-name", deadline,
                            params={"experiment_name": name})  # fmt: skip
            try:
                self._ids[name] = str(doc["experiment"]["experiment_id"])
            except (KeyError, TypeError):
                raise SourceError("malformed", "experiments/get-by-name without an id") from None
        return self._ids[name]

    def fetch(self, start: float, end: float) -> list[PulledSeries]:
        deadline = self.deadline()
        lo, hi = start * 1000, end * 1000
        out: list[PulledSeries] = []
        total = 0
        for experiment in self.experiments:
            exp_id = self._experiment_id(experiment, deadline)
            for run in self._runs(exp_id, deadline):
                info, data = _dict(run.get("info")), _dict(run.get("data"))
                run_id = info.get("run_id")
                if not isinstance(run_id, str) or not run_id:
                    continue  # no history to ask for without it
                label = info.get("run_name") or run_id
                for latest in _list(data.get("metrics")):
                    if not isinstance(latest, dict) or number(latest.get("timestamp")) <= lo:
                        continue
                    key = str(latest.get("key"))
                    ts, vs = self._history(str(run_id), key, lo, hi, deadline)
                    total += len(ts)
                    self.check_size(total)
                    if len(ts):
                        out.append(PulledSeries(f"{experiment}.{label}.{key}", ts, vs))
        return out

    def _runs(self, exp_id: str, deadline: float) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        token = None
        while len(runs) < self.options.max_runs:
            body: dict[str, Any] = {"experiment_ids": [exp_id], "run_view_type": "ACTIVE_ONLY",
                                    "max_results": min(1000, self.options.max_runs)}  # fmt: skip
            if token:
                body["page_token"] = token
            doc = self._get("POST", "/runs/search", deadline, body=body)
            page = doc.get("runs", [])
            if not isinstance(page, list):
                raise SourceError("malformed", "runs/search: runs is not a list")
            runs.extend(r for r in page if isinstance(r, dict))
            token = _next_page(doc, token, "runs/search")
            if not token:
                break
        return runs[: self.options.max_runs]

    def _history(
        self, run_id: str, key: str, lo: float, hi: float, deadline: float
    ) -> tuple[np.ndarray, np.ndarray]:
        ts: list[float] = []
        vs: list[float] = []
        token = None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            doc = self._get("GET", "/metrics/get-history", deadline, params=params)
            for m in _list(doc.get("metrics")):
                t = number(m.get("timestamp")) if isinstance(m, dict) else float("nan")
                if lo < t <= hi:
                    ts.append(t / 1000.0)
                    vs.append(number(m.get("value")))
            self.check_size(len(ts))
            token = _next_page(doc, token, "metrics/get-history")
            if not token:
                break
        order = np.argsort(ts, kind="stable")
        return np.asarray(ts)[order], np.asarray(vs, dtype=np.float64)[order]

    def close(self) -> None:
        super().close()
        self.session.close()


def _dict(value: Any) -> dict[str, Any]:
    """A field the answer should hold as an object (``{}`` when it does not)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A field the answer should hold as a list (``[]`` when it does not)."""
    return value if isinstance(value, list) else []


def _next_page(doc: Any, token: str | None, what: str) -> str | None:
    """The answer's ``next_page_token``; ``SourceError`` when it is the one just sent
    (a server that would page for ever, until the deadline)."""
    nxt = doc.get("next_page_token") if isinstance(doc, dict) else None
    if nxt and nxt == token:
        raise SourceError("malformed", f"{what}: the same next_page_token again")
    return str(nxt) if nxt else None
