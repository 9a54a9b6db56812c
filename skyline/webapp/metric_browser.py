"""The Metrics page's browser: a namespace tree of the dotted names (one level at a
time), search results, and for the metrics shown a sparkline and the anomaly count.

Names come from one server-side filter (``queries.search_metrics``: a substring or
a glob today, a label selector later), so the tree, the search and /api/v1/metrics
always agree.  Skyline's own ``skyline.*`` metrics are kept apart from the user's.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skyline.db.models import Anomaly, Metric
from skyline.webapp.context import Context
from skyline.webapp.thinning import extremes

SELF_PREFIX = "skyline."  # the daemons' own counters: skyline.<daemon>.<host>.<counter>
SPARK_POINTS = 60
SPARK_W, SPARK_H = 160, 28
MAX_PAGE = 10**6
MAX_NAMES = 10**9  # all of them


class BadPage(ValueError):
    """A page number past the last page or not a number; the message says which."""


@dataclass
class Level:
    """One level of the tree under ``prefix``: its sub-namespaces (name, metrics under
    it) and the metrics directly in it."""

    prefix: str
    folders: list[tuple[str, int]] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)


def is_self(name: str) -> bool:
    return name.startswith(SELF_PREFIX)


def level(names: list[str], prefix: str) -> Level:
    """The children of ``prefix`` (``""`` or ending in '.') among sorted ``names``.

    A sub-namespace's names are contiguous in sorted order (``p.x.`` up to ``p.x/``,
    '/' being the character after '.'), so each is counted with one bisection: the
    cost grows with the children shown, not with the names under them."""
    out = Level(prefix)
    i = bisect.bisect_left(names, prefix)
    end = bisect.bisect_left(names, prefix[:-1] + "/") if prefix else len(names)
    while i < end:
        head, dot, _ = names[i][len(prefix) :].partition(".")
        if dot and head:
            j = bisect.bisect_left(names, f"{prefix}{head}/", i, end)
            out.folders.append((head, j - i))
            i = j
        else:
            out.leaves.append(names[i])
            i += 1
    out.folders.sort()  # "a-b." sorts before "a." by full name, after it by segment
    return out


def parent(prefix: str) -> str:
    """``a.b.`` -> ``a.``; ``a.`` -> ``""``."""
    head = prefix.rstrip(".").rpartition(".")[0]
    return f"{head}." if head else ""


def page_of(items: list[Any], page: int, per_page: int) -> tuple[list[Any], int]:
    """(the page's items, the number of pages); BadPage past the last page."""
    pages = max(1, -(-len(items) // per_page))
    if page > pages:
        raise BadPage(f"page: {page} is past the last page ({pages})")
    return items[(page - 1) * per_page : page * per_page], pages


def parse_page(value: str | None) -> int:
    if not value:
        return 1
    if not value.isascii() or not value.isdigit() or len(value) > 7 or int(value) < 1:
        raise BadPage(f"page: {value[:20]!r} is not a whole number from 1 to {MAX_PAGE}")
    return min(int(value), MAX_PAGE)


def anomaly_counts(ctx: Context, names: list[str], since: int) -> dict[str, int]:
    """Anomalies of each of ``names`` since ``since`` (0 when none)."""
    if not names:
        return {}
    with Session(ctx.engine) as db:
        rows = db.execute(
            select(Metric.name, func.count(Anomaly.id))
            .join(Anomaly, Anomaly.metric_id == Metric.id)
            .where(Metric.name.in_(names), Anomaly.timestamp >= since)
            .group_by(Metric.name)
        ).all()
    counts = dict.fromkeys(names, 0)
    counts.update({name: n for name, n in rows})
    return counts


def sparklines(ctx: Context, names: list[str], since: int, records: int) -> dict[str, str]:
    """An SVG polyline's ``points`` for each metric's points since ``since`` (its last
    ``records`` records at most), thinned to SPARK_POINTS; "" for none."""
    out = {}
    for name, series in ctx.store.read_tails(names, records).items():
        keep = series.timestamps >= since
        out[name] = polyline(series.timestamps[keep], series.values[keep])
    return out


def polyline(ts: np.ndarray, vs: np.ndarray) -> str:
    if len(ts) == 0:
        return ""
    ts, vs = extremes(ts, vs, SPARK_POINTS)
    t0, t1 = float(ts[0]), float(ts[-1])
    v0, v1 = float(vs.min()), float(vs.max())
    xs = (ts - t0) / (t1 - t0) * SPARK_W if t1 > t0 else np.full(len(ts), SPARK_W / 2)
    ys = (
        SPARK_H - 2 - (vs - v0) / (v1 - v0) * (SPARK_H - 4)
        if v1 > v0
        else np.full(len(ts), SPARK_H / 2)
    )
    if len(ts) == 1:  # a single point: a short flat stroke, so it shows
        return f"{xs[0] - 2:.1f},{ys[0]:.1f} {xs[0] + 2:.1f},{ys[0]:.1f}"
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def browse(ctx: Context, q: str, prefix: str, page: int, now: float) -> dict[str, Any]:
    """What the Metrics page lists: search results for ``q``, else the tree level at
    ``prefix``; one page of metrics with their sparklines and anomaly counts over
    the graph window.  BadPage for a page past the end."""
    from skyline.webapp import queries

    per_page = ctx.settings.webapp.page_size
    names, total = queries.search_metrics(ctx, q, limit=MAX_NAMES)
    lvl = Level(prefix)
    if q:  # the user's metrics first, then Skyline's own
        listed = [n for n in names if not is_self(n)] + [n for n in names if is_self(n)]
    else:
        lvl = level(names, prefix)
        listed = lvl.leaves
    shown, pages = page_of(listed, page, per_page)
    since = int(now) - ctx.settings.webapp.graph_window
    counts = anomaly_counts(ctx, shown, since)
    sparks = sparklines(ctx, shown, since, records=ctx.settings.webapp.graph_window // 10)
    rows = [{"name": n, "anomalies": counts[n], "spark": sparks.get(n, ""), "own": is_self(n)}
            for n in shown]  # fmt: skip
    folders = [(f, n) for f, n in lvl.folders if prefix or f"{f}." != SELF_PREFIX]
    own = [(f, n) for f, n in lvl.folders if not prefix and f"{f}." == SELF_PREFIX]
    return {"rows": rows, "total": total, "listed": len(listed), "page": page, "pages": pages,
            "folders": folders, "own_folders": own, "prefix": prefix, "parent": parent(prefix),
            "hours": ctx.settings.webapp.graph_window / 3600}  # fmt: skip
