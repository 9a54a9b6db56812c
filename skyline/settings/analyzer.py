"""The [analyzer] section: the streaming detector or the classic ensemble on every metric."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from skyline.settings.base import AlgorithmList, LoopSection, algorithms_key, check_consensus, key
from skyline.settings.regexes import check_name_list


class AnalyzerSection(LoopSection):
    """The ensemble run on every metric."""

    interval: float = key(60.0, "Seconds between two sweeps that analyse every metric.", "s", gt=0)
    arrival_interval: float = key(
        0.2,
        "How often metrics that just received data are taken from horizon's changed set "
        "and analysed (analysis on arrival).",
        "s",
        gt=0,
    )
    mode: Literal["default", "classic"] = key(
        "default",
        "default: every arriving point is judged by the streaming detector (SpikeLevel, "
        "state kept in Redis), the ensemble's votes kept as evidence; classic: the "
        "three-sigma ensemble decides, reproducing earthgecko Skyline's verdicts, quirks "
        "included (see docs/algorithms.md).",
    )
    threshold: float = key(
        0.75,
        "mode = default: a point whose detector score (0-1) reaches this is an anomaly; "
        "skyline nab run scores the detector at this threshold too.",
        "",
        gt=0,
        le=1,
    )
    state_cache_mb: int = key(
        256,
        "mode = default: memory for the detector states this analyzer saved last (about "
        "7.5 KB a metric), so a pass reads only their 24-byte headers back from Redis; "
        "0 reads every state whole.",
        "MB",
        ge=0,
    )
    state_checkpoint: float = key(
        300.0,
        "mode = default: a detector state this analyzer holds in its cache is written back "
        "to Redis at most this often (spread over passes), and at stop; 0 writes every "
        "state on every pass.  After a crash the next analyzer re-judges at most this much "
        "of each metric from the stored series (the same detections, stored once).",
        "s",
        ge=0,
    )
    algorithms: AlgorithmList = algorithms_key(
        "The ensemble, in the order run (an early exit skips the rest once consensus is "
        "out of reach)."
    )
    consensus: int = key(6, "How many algorithms must agree for an anomaly.", "", ge=1)
    min_tolerable_length: int = key(
        100, "Series with fewer points are not analysed (TooShort).", "points", ge=1
    )
    stale_period: int = key(
        500, "Series whose newest point is older than this are not analysed (Stale).", "s", ge=1
    )
    max_tolerable_boredom: int = key(
        100, "A series whose last this-many points ...", "points", ge=1
    )
    boredom_set_size: int = key(
        1, "... hold at most this many distinct values is Boring and not analysed.", "", ge=1
    )
    detect_counters: bool = key(
        True,
        "Analyse monotonically increasing series (counters) as their non-negative derivative.",
    )
    stream_maxlen: int = key(
        100000, "Anomaly events kept on the anomalies stream.", "events", ge=100
    )
    skip: list[str] = key(
        ["skyline.analyzer"],
        "Metrics not analysed, in the forms of [horizon] skip (a dotted prefix, or 're:' "
        "and a regex); the analyzer's own metrics by default, against feedback.",
    )
    do_not_skip: list[str] = key([], "Exceptions to [analyzer] skip.")

    _names_ok = field_validator("skip", "do_not_skip")(check_name_list)

    @model_validator(mode="after")
    def _consensus_reachable(self) -> AnalyzerSection:
        check_consensus(self.consensus, self.algorithms)
        return self
