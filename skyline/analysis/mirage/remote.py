"""Fetching a metric's window from Graphite or Prometheus instead of the rollups.

Both are plain HTTP GETs (skyline.analysis.mirage.fetch: ``requests``) with a connect timeout,
a read timeout, a deadline of both per try that a watchdog enforces however the
server trickles its answer, a cap on the response size and a few tries.  Anything
unusable -- refused, timed out, past the deadline, 5xx, too large, not JSON, the
wrong shape, no finite value -- is a ``FetchError`` whose message says which; the
caller counts it and falls back to the rollups.

Metric name -> PromQL (documented in docs/mirage.md):

1. a name that is already a PromQL selector (``name`` or ``name{...}``) is used as is;
2. a name in flux's remote_write form ``[<prefix>.]<name>.<label>=<value>...`` becomes
   ``<name>{<label>="<value>",...}`` (the prefix is flux's, not Prometheus');
3. any other name has every character outside ``[A-Za-z0-9_:]`` replaced by ``_``
   (``web.api.latency`` -> ``web_api_latency``).
"""

from __future__ import annotations

import math
import re

import numpy as np

from skyline.analysis.mirage.fetch import FetchError, RemoteOptions, get_json
from skyline.store.datapoint import MAX_TIMESTAMP
from skyline.store.timeseries import Series, sort_dedupe

SELECTOR = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(\{.*\})?")
PROM_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
MAX_POINTS = 1_000_000


def promql(metric: str) -> str:
    """The PromQL selector for a Skyline metric name (rules in the module docstring)."""
    if SELECTOR.fullmatch(metric):
        return metric
    parts = metric.split(".")
    labels: list[tuple[str, str]] = []
    while parts and (m := LABEL.fullmatch(parts[-1])):
        labels.insert(0, (m.group(1), m.group(2)))
        parts.pop()
    if labels and parts and PROM_NAME.fullmatch(parts[-1]):
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        return f"{parts[-1]}{{{inner}}}"
    return re.sub(r"[^A-Za-z0-9_:]", "_", metric)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _series(pairs: list[tuple[float, float]]) -> Series:
    """The finite points whose timestamps a series can hold (epoch seconds in
    ``(0, MAX_TIMESTAMP]``: one in milliseconds is not)."""
    finite = [(t, v) for t, v in pairs
              if math.isfinite(t) and 0 < t <= MAX_TIMESTAMP and math.isfinite(v)]  # fmt: skip
    if not finite:
        raise FetchError("no finite datapoint in the window")
    t = np.array([p[0] for p in finite], dtype=np.float64).astype(np.int64)
    v = np.array([p[1] for p in finite], dtype=np.float64)
    return sort_dedupe(t, v)


def _points(points: object, ts_at: int, not_a_list: str, not_a_pair: str) -> Series:
    """The series of a reply's list of two-element points, the timestamp at index
    ``ts_at`` of each (graphite: ``[value, ts]``, prometheus: ``[ts, "value"]``)."""
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise FetchError(not_a_list)
    pairs = []
    for p in points:
        if not isinstance(p, list) or len(p) != 2:
            raise FetchError(not_a_pair)
        pairs.append((_number(p[ts_at]), _number(p[1 - ts_at])))
    return _series(pairs)


def _number(x: object) -> float:
    """A value as sent: a number, a numeric string, or null/"NaN" (-> NaN, skipped)."""
    if x is None:
        return math.nan
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        raise FetchError(f"unexpected value {str(x)[:40]!r}")
    try:
        return float(x)
    except ValueError:
        raise FetchError(f"unexpected value {str(x)[:40]!r}") from None


def fetch_graphite(base: str, metric: str, start: int, end: int, opts: RemoteOptions) -> Series:
    """``/render?target=<metric>&from=<start>&until=<end>&format=json``; the first
    target's datapoints ``[[value|null, ts], ...]``."""
    url = base.rstrip("/") + "/render"
    params = {"target": metric, "from": str(start), "until": str(end), "format": "json"}
    body = get_json(url, params, opts)
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        raise FetchError("graphite: expected a non-empty list of targets")
    return _points(body[0].get("datapoints"), 1,
                   "graphite: target without a datapoints list",
                   "graphite: a datapoint is not [value, timestamp]")  # fmt: skip


def fetch_prometheus(
    base: str, metric: str, start: int, end: int, step: int, opts: RemoteOptions
) -> Series:
    """``/api/v1/query_range``; the first series of the matrix, ``[[ts, "value"], ...]``."""
    url = base.rstrip("/") + "/api/v1/query_range"
    params = {"query": promql(metric), "start": str(start), "end": str(end), "step": str(step)}
    body = get_json(url, params, opts)
    if not isinstance(body, dict) or body.get("status") != "success":
        raise FetchError("prometheus: status is not success")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise FetchError("prometheus: result is not a matrix")
    result = data.get("result")
    if not isinstance(result, list) or not result or not isinstance(result[0], dict):
        raise FetchError("prometheus: no series for the query")
    return _points(result[0].get("values"), 0,
                   "prometheus: series without a values list",
                   "prometheus: a sample is not [timestamp, value]")  # fmt: skip
