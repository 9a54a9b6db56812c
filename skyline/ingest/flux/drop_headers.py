"""The ``dropMetrics`` and ``dropLabels`` request headers of Prometheus remote_write.

As in earthgecko's flux, a Prometheus server (or the proxy in front of it) can ask
flux to leave series and labels out of what it stores, per request:

- ``dropMetrics``: a JSON list of regular expressions; a series whose metric name
  (``__name__``) matches one of them (whole name, as Prometheus relabelling
  anchors) is dropped and counted (``prometheus.series_dropped_by_header``);
- ``dropLabels``: a JSON list of ``[label, value regex]`` pairs; a label of that
  name whose value matches the regex is left out of the series (its name and its
  label set), so ``[["instance", ".*"]]`` merges the series of all instances.

e.g. ``dropMetrics: ["go_gc_.*", "process_.*"]`` and ``dropLabels: [["le", ".*"]]``.

Both are bounded (``MAX_RULES`` entries, ``MAX_PATTERN`` characters a pattern) and
checked before any sample is read: a header that is not such a list, or holds a
regex that does not compile or that ``re`` could take too long on (``(a|a)*b`` doubles
its time with every character of the name: ``skyline.settings.regexes``), is answered
400 with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from skyline.ingest.flux.limits import HttpError
from skyline.settings.regexes import RegexError, untrusted

MAX_RULES = 64
MAX_PATTERN = 256
MAX_HEADER = 16384


class HeaderSource(Protocol):
    def get(self, key: str) -> str | None: ...


@dataclass
class Drops:
    metrics: list[re.Pattern[str]] = field(default_factory=list)
    labels: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: HeaderSource) -> Drops | None:
        metrics = _json_list(headers.get("dropMetrics"), "dropMetrics")
        labels = _json_list(headers.get("dropLabels"), "dropLabels")
        if not metrics and not labels:
            return None
        out = cls()
        for item in metrics:
            if not isinstance(item, str):
                raise _bad("dropMetrics", "each entry must be a regex string")
            out.metrics.append(_compile(item, "dropMetrics"))
        for item in labels:
            if (
                not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, str) for x in item) or not item[0]
            ):  # fmt: skip
                raise _bad("dropLabels", 'each entry must be a pair ["label", "value regex"]')
            out.labels.setdefault(item[0], []).append(_compile(item[1], "dropLabels"))
        return out

    def drop_metric(self, name: str) -> bool:
        return any(p.fullmatch(name) for p in self.metrics)

    def drop_label(self, label: str, value: str) -> bool:
        patterns = self.labels.get(label)
        return bool(patterns) and any(p.fullmatch(value) for p in patterns)  # type: ignore[union-attr]


def _json_list(raw: str | None, header: str) -> list[Any]:
    if raw is None or not raw.strip():
        return []
    if len(raw) > MAX_HEADER:
        raise _bad(header, f"longer than {MAX_HEADER} characters")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise _bad(header, "not JSON (send a JSON list)") from None
    if not isinstance(doc, list):
        raise _bad(header, "must be a JSON list")
    if len(doc) > MAX_RULES:
        raise _bad(header, f"more than {MAX_RULES} entries")
    return doc


def _compile(pattern: str, header: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN:
        raise _bad(header, f"a pattern longer than {MAX_PATTERN} characters")
    try:
        return untrusted(pattern)
    except RegexError as exc:
        raise _bad(header, f"invalid regex {pattern[:60]!r}: {exc}") from None


def _bad(header: str, why: str) -> HttpError:
    return HttpError(400, "bad_drop_header", f"{header} header: {why}")
