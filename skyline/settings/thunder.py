"""Settings of thunder: the daemons' heartbeats and the data's health (``[[data_health]]``)."""

from __future__ import annotations

import re

from pydantic import field_validator, model_validator

from skyline.settings.base import LoopSection, Section, key

LABEL_RE = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")


class ThunderSection(LoopSection):
    """Self-monitoring: the daemons' heartbeats, and whether the metrics still arrive."""

    interval: float = key(15.0, "Seconds between two checks of the daemons' heartbeats.", "s", gt=0)
    data_interval: float = key(
        60.0, "Seconds between two checks that the metrics still arrive ([[data_health]]).", "s",
        gt=0,
    )  # fmt: skip
    stale_after: int = key(
        -1,
        "A metric that no [[data_health]] rule matches is stale after this long without a "
        "datapoint: reported once (an event of skyline.thunder.data.all.stale), well before "
        "roomba deletes it at skyline.metrics_inactive_after. -1: automatic, 3600 s or half "
        "of metrics_inactive_after if that is shorter; 0: only the rules' namespaces are "
        "watched.",
        "s",
        ge=-1,
    )
    min_fraction: float = key(
        0.5,
        "Report when the number of metrics that still arrive falls below this fraction of the "
        "most seen in the last hour (skyline.thunder.data.all.count_drop); 0: never.",
        "",
        ge=0,
        le=1,
    )


class DataHealthRule(Section):
    """One [[data_health]] table: how long a namespace's metrics may be silent."""

    namespace: str = key(
        ..., "A dotted prefix (web matches web and web.x, not webx) or re:REGEX (searched)."
    )
    name: str = key(
        "",
        "Label in the event's metric, skyline.thunder.data.<name>.stale; default: the prefix. "
        "Required for a re: namespace.",
    )
    stale_after: int = key(600, "A metric silent this long is stale.", "s", ge=1)
    min_fraction: float = key(
        0.5,
        "Report when fewer than this fraction of the namespace's usual metrics arrive; 0: never.",
        "",
        ge=0,
        le=1,
    )
    baseline: int = key(
        3600, "The usual number of metrics is the most seen arriving within this window.", "s",
        ge=60,
    )  # fmt: skip

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if value.startswith("re:"):
            try:
                re.compile(value[3:])
            except re.error as exc:
                raise ValueError(f"bad regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _label(self) -> DataHealthRule:
        if not self.name:
            if self.namespace.startswith("re:"):
                raise ValueError("a re: namespace needs a name (the label of its events)")
            object.__setattr__(self, "name", self.namespace.strip("."))
        if not LABEL_RE.fullmatch(self.name):
            raise ValueError(
                f"name {self.name!r}: use letters, digits, '_', '-' and single dots "
                "(it becomes part of a metric name)"
            )
        return self

    def matches(self, metric: str) -> bool:
        if self.namespace.startswith("re:"):
            return re.search(self.namespace[3:], metric) is not None
        prefix = self.namespace.rstrip(".")
        return metric == prefix or metric.startswith(prefix + ".")


AUTO_STALE_AFTER = 3600


def catch_all_stale_after(thunder: ThunderSection, inactive_after: int) -> int:
    """The catch-all rule's stale_after in seconds (0: off), ``-1`` resolved."""
    if thunder.stale_after >= 0:
        return thunder.stale_after
    return max(1, min(AUTO_STALE_AFTER, int(inactive_after - thunder.data_interval) // 2))


def check_before_roomba(
    thunder: ThunderSection, rules: list[DataHealthRule], inactive_after: int
) -> None:
    """Every silence must be reported before roomba deletes the silent series."""
    default = catch_all_stale_after(thunder, inactive_after)
    limits = [("[thunder] stale_after", default)] if default else []
    limits += [(f"[[data_health]] {r.name} stale_after", r.stale_after) for r in rules]
    for what, stale_after in limits:
        if stale_after + thunder.data_interval >= inactive_after:
            raise ValueError(
                f"{what} ({stale_after} s) plus [thunder] data_interval "
                f"({thunder.data_interval:g} s) must be less than "
                f"[skyline] metrics_inactive_after ({inactive_after} s), or roomba deletes "
                "silent metrics before thunder reports them"
            )
