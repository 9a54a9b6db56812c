"""Settings of luminosity: which other metrics moved with an anomaly (docs/luminosity.md)."""

from __future__ import annotations

from pydantic import model_validator

from skyline.settings.base import LoopSection, key


class LuminositySection(LoopSection):
    """Correlation of anomalies with other metrics."""

    interval: float = key(
        1.0, "How long one read of the anomalies stream waits for new anomalies.", "s", gt=0
    )
    window: int = key(
        30,
        "Points of the anomaly's metric up to the anomaly that are correlated (30 steps "
        "of its resolution, e.g. 30 minutes at 60 s); other metrics are sampled at the "
        "same timestamps.",
        "points",
        ge=5,
        le=10000,
    )
    min_points: int = key(
        10, "An anomaly whose window has fewer points is not correlated.", "points", ge=3
    )
    max_shift: int = key(
        3,
        "Time shifts tried either way, in steps of the window (luminol's cross-correlation "
        "with shifts); a metric that moved a little before or after still correlates.",
        "steps",
        ge=0,
        le=100,
    )
    shift_impact: float = key(
        0.05,
        "How much a shift lowers the shifted coefficient: coefficient x (1 - |shift| / "
        "max shift x this) (luminol's shift_impact).",
        "",
        ge=0,
        le=1,
    )
    threshold: float = key(
        0.9,
        "A metric is related when its coefficient is at least this "
        "(LUMINOL_CROSS_CORRELATION_THRESHOLD).",
        "",
        gt=0,
        le=1,
    )
    negative: bool = key(
        False,
        "Also keep anti-correlated metrics (coefficient <= -threshold): they moved the "
        "opposite way. Off, as in Skyline: it adds noise.",
    )
    max_correlations: int = key(
        50, "Related metrics stored per anomaly at most, strongest first.", "metrics", ge=1
    )
    max_metrics: int = key(
        20000,
        "Metrics compared per anomaly at most (in name order); the rest are skipped and "
        "counted (skipped.max_metrics).",
        "metrics",
        ge=1,
    )
    namespaces: list[str] = key(
        [],
        "Only metrics matching one of these patterns are compared (the meanings of an "
        "[[alerts]] pattern: name, substring, dotted elements or regex); empty = all "
        "(LUMINOSITY_CORRELATE_NAMESPACES_ONLY).",
    )
    alerting_only: bool = key(
        False,
        "Only correlate anomalies of metrics an [[alerts]] rule matches (CORRELATE_ALERTS_ONLY).",
    )
    row_wait: float = key(
        2.0,
        "How long to wait for panorama to store the anomaly row before leaving the entry "
        "for a later try.",
        "s",
        ge=0,
    )
    max_tries: int = key(
        5,
        "Tries (deliveries) of an anomaly whose row never appears and that is not a "
        "repeat, before it is dropped (counted skipped.no_anomaly_row).",
        "",
        ge=1,
    )
    claim_idle: int = key(
        60,
        "Anomalies left pending (row not yet stored, or a crashed luminosity) are tried "
        "again after this.",
        "s",
        ge=1,
    )

    @model_validator(mode="after")
    def _min_points_fit(self) -> LuminositySection:
        if self.min_points > self.window:
            raise ValueError(
                f"min_points {self.min_points} is more than window {self.window}: no anomaly "
                "could be correlated; lower min_points or raise window"
            )
        return self
