"""The one server-side filter of metric names: a name pattern and a label selector.

The Metrics page and ``GET /api/v1/metrics`` both call ``select_metrics``: the
pattern keeps the page's meaning (``*`` ``?`` ``[]`` wildcards, else a substring),
the selector is Prometheus syntax (``http_requests_total{code=~"5.."}``, see
skyline.settings.selector) matched against each metric's label set from the label
index (skyline.store.labels; a plain dotted name is ``{__name__="<name>"}``).  A
malformed selector raises ``BadFilter`` with the parser's reason (a 400).
"""

from __future__ import annotations

from skyline.settings.selector import SelectorError, check_backtracking, parse
from skyline.store.labels import LabelIndex
from skyline.webapp.context import Context
from skyline.webapp.queries import BadFilter, search_metrics

MAX_SELECTOR = 4096


def select_metrics(
    ctx: Context, pattern: str = "", selector: str = "", limit: int = 200
) -> tuple[list[str], int]:
    """(the first ``limit`` matching names, sorted; how many match)."""
    names, _ = search_metrics(ctx, pattern, limit=len(ctx.store.metrics()) + 1)
    if selector.strip():
        try:
            sel = parse(selector[: MAX_SELECTOR + 1])
            check_backtracking(sel)
        except SelectorError as exc:
            raise BadFilter(f"selector: {exc}") from None
        names = LabelIndex(ctx.redis, ctx.keys).select(sel, names)
    return names[:limit], len(names)


def metric_labels(ctx: Context, name: str) -> dict[str, str]:
    """The metric's label set (the index's, else what its name shows)."""
    return LabelIndex(ctx.redis, ctx.keys).get(name)
