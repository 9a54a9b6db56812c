"""Settings of mirage: confirmation of analyzer anomalies over a longer window, and the
down-sampled history (rollups) it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from skyline.settings.base import (
    AlgorithmList,
    LoopSection,
    algorithms_key,
    check_consensus,
    key,
)

if TYPE_CHECKING:
    from skyline.settings.alerting import AlertRule

FETCH_BACKOFF = 0.2  # s: the wait before a history fetch's try n (n = 1, 2...) is n x this


class MirageSection(LoopSection):
    """Confirmation of anomalies over a longer window."""

    interval: float = key(
        1.0, "How long one read of the mirage stream waits for new checks.", "s", gt=0
    )
    workers: int = key(4, "Checks judged at the same time (threads).", "", ge=1, le=64)
    max_inflight: int = key(
        32, "Checks taken from the stream and not yet finished, at most.", "checks", ge=1
    )
    max_check_age: int = key(
        300,
        "A check queued longer ago than this when mirage takes it is not judged, and one "
        "whose judgement is ready only later than this after it was queued (a slow "
        "fetch) is not published: either is passed on (alerted) unconfirmed and counted "
        "as expired (MIRAGE_STALE_SECONDS). With a remote source it must exceed the "
        "longest history fetch: remote_attempts x (remote_connect_timeout + "
        "remote_read_timeout) plus the backoffs between tries (0.2 s, 0.4 s, ...).",
        "s",
        ge=1,
    )
    claim_idle: int = key(
        60, "Checks a crashed mirage took but did not finish are taken over after this.", "s", ge=1
    )
    mode: Literal["default", "classic"] = key(
        "default", "Ensemble mode, as [analyzer] mode (see docs/algorithms.md)."
    )
    algorithms: AlgorithmList = algorithms_key(
        "The ensemble run on the long window, in the order run."
    )
    consensus: int = key(6, "How many algorithms must agree to confirm the anomaly.", "", ge=1)
    min_points: int = key(
        100,
        "Fewer buckets of history than this is too little to judge: the anomaly is "
        "confirmed (alerted) with the reason 'insufficient history'.",
        "points",
        ge=3,
    )
    min_coverage: float = key(
        0.5,
        "Also too little history: fewer buckets than this fraction of the window's buckets.",
        "",
        ge=0,
        le=1,
    )
    daily_peaks: int = key(
        3,
        "Clear an anomaly when the window shows at least this many similar daily peaks at "
        "about the same time of day (a recurring daily pattern); 0 disables the override.",
        "days",
        ge=0,
    )
    daily_peak_tolerance: float = key(
        0.2,
        "A daily peak is similar when its excursion from the window's median reaches at "
        "least (1 - this fraction) of the anomaly's excursion (higher peaks count too).",
        "",
        gt=0,
    )
    daily_peak_window: int = key(
        3600, "How far either side of the anomaly's time of day a daily peak may be.", "s", ge=0
    )
    rollups: Literal["auto", "on", "off"] = key(
        "auto",
        "Which metrics horizon keeps rollups for: auto = the metrics an [[alerts]] rule "
        "with mirage_hours matches, and only while neither graphite_url nor "
        "prometheus_url is set; on = every metric (ionosphere learning or profiles longer "
        "than a day of metrics mirage does not see); off = none.",
    )
    rollup_resolution: int = key(
        600, "Bucket width of the rollups (down-sampled history) mirage reads.", "s", ge=60
    )
    rollup_retention: int = key(
        2592000, "How much rollup history is kept per metric (30 days).", "s", ge=86400
    )
    rollup_interval: int = key(
        300,
        "How often horizon's roomba folds complete buckets into the rollups (must be well "
        "under [skyline] full_duration so no raw data is trimmed before it is folded).",
        "s",
        ge=1,
    )
    rollup_lag: int = key(
        60,
        "A bucket is complete once the series has data at least this long after the "
        "bucket's end (late points within the lag are still folded in).",
        "s",
        ge=0,
    )
    graphite_url: str = key(
        "",
        "Graphite to fetch the window from (render API), e.g. http://graphite:8080; empty "
        "reads the rollups. Tried before prometheus_url.",
    )
    prometheus_url: str = key(
        "",
        "Prometheus (query_range API) to fetch the window from, e.g. http://prom:9090; empty "
        "reads the rollups.",
    )
    remote_connect_timeout: float = key(
        5.0,
        "Connect timeout of a history fetch; also how long a stop may wait for a connect "
        "under way.",
        "s",
        gt=0,
    )
    remote_read_timeout: float = key(
        20.0,
        "Read timeout of a history fetch (each socket read). With remote_connect_timeout "
        "also the deadline of one try: a watchdog cuts the try remote_connect_timeout + "
        "this after it began, however slowly the server sends headers or body.",
        "s",
        gt=0,
    )
    remote_max_bytes: int = key(
        16 << 20, "A history response larger than this is a failed fetch.", "bytes", ge=1024
    )
    remote_attempts: int = key(
        3, "Tries of a history fetch before falling back to the rollups.", "", ge=1, le=10
    )

    @model_validator(mode="after")
    def _consensus_reachable(self) -> MirageSection:
        check_consensus(self.consensus, self.algorithms)
        return self

    @model_validator(mode="after")
    def _fetch_fits_check_age(self) -> MirageSection:
        n = self.remote_attempts
        backoffs = FETCH_BACKOFF * n * (n - 1) / 2
        worst = n * (self.remote_connect_timeout + self.remote_read_timeout) + backoffs
        if (self.graphite_url or self.prometheus_url) and worst >= self.max_check_age:
            raise ValueError(
                "remote_attempts x (remote_connect_timeout + remote_read_timeout) + backoffs "
                f"= {worst:g} s must be less than max_check_age {self.max_check_age} s; lower "
                "the timeouts or attempts, or raise max_check_age"
            )
        return self


def check_mirage_resolution(rules: Sequence[AlertRule], mirage: MirageSection,
                            full_duration: int) -> None:  # fmt: skip
    """A rule's ``mirage_resolution`` must be readable: no coarser than the rollups
    (which are not down-sampled further), and when finer, its window is read from the
    raw series, which holds ``full_duration``, unless a remote source serves it."""
    for rule in rules:
        res = rule.mirage_resolution
        if res is None or not rule.mirage_hours:
            continue
        where = f"[[alerts]] pattern {rule.pattern!r}: mirage_resolution {res}"
        if res > mirage.rollup_resolution:
            raise ValueError(f"{where} s is coarser than [mirage] rollup_resolution "
                             f"({mirage.rollup_resolution} s); use at most that")  # fmt: skip
        remote = mirage.graphite_url or mirage.prometheus_url
        too_long = rule.mirage_hours * 3600 > full_duration
        if res < mirage.rollup_resolution and not remote and too_long:
            raise ValueError(
                f"{where} s is finer than the rollups, so mirage reads the window from the "
                f"raw series, which holds [skyline] full_duration ({full_duration} s); "
                f"mirage_hours {rule.mirage_hours} h does not fit: lower mirage_hours, raise "
                "full_duration, or set [mirage] graphite_url or prometheus_url"
            )
