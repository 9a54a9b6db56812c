"""Settings of ionosphere: features profiles, motif matching and learning."""

from __future__ import annotations

from skyline.settings.base import LoopSection, key


class IonosphereSection(LoopSection):
    """Features profiles and motif matching."""

    interval: float = key(
        1.0,
        "Longest wait for new stream entries before a run ends (ionosphere blocks on its stream).",
        "s",
        gt=0,
    )
    claim_idle: int = key(
        60, "Entries left unacknowledged by a dead consumer this long are claimed.", "s", ge=1
    )
    max_deliveries: int = key(
        5,
        "An entry whose check fails this many times (not an outage: a bug, bad data) is sent "
        "on to the alerts unchecked and acknowledged, so it cannot block the stream.",
        "",
        ge=1,
    )
    maintenance_interval: int = key(
        60,
        "Seconds between two maintenance passes: matches linked to their anomalies and "
        "ionosphere:metrics reconciled with SQL.",
        "s",
        ge=1,
    )
    features_percent_similar: float = key(
        1.0,
        "A profile matches when the sums of the common features differ by less than this "
        "percent of the profile's sum.",
        "%",
        ge=0,
    )
    feature_tolerance_percent: float = key(
        0.0,
        "If above 0, a features match also needs at least feature_tolerance_share of the "
        "common features each within this percent of the profile's value (0: sums only).",
        "%",
        ge=0,
    )
    feature_tolerance_share: float = key(
        0.9, "Share of common features that must be within feature_tolerance_percent.", "",
        ge=0, le=1,
    )  # fmt: skip
    min_common_features: int = key(
        20, "Fewer common features than this: the profile cannot match (corrupt or old).", "",
        ge=1,
    )  # fmt: skip
    motifs_enabled: bool = key(True, "Match the latest subsequence against profiles' series.")
    motif_sizes: list[int] = key(
        [180, 360, 720],
        "Subsequence lengths (points) searched: the last N points of the anomalous series "
        "against every window of each profile's series (at least 10 % longer than N).",
        "points",
    )
    motif_max_distance: float = key(
        0.3,
        "Largest z-normalised Euclidean distance divided by sqrt(size) (0 identical, 2 "
        "opposite) for a motif match.",
        "",
        ge=0,
    )
    motif_range_padding_percent: float = key(
        10.0,
        "A motif match also needs the subsequence's values within the matched window's "
        "min/max padded by this percent of its range.",
        "%",
        ge=0,
    )
    memcached: str = key(
        "",
        "host:port of memcached caching profile data across processes; empty: an in-process cache.",
    )
    memcached_timeout: float = key(0.5, "memcached connect and I/O timeout.", "s", gt=0)
    cache_max_entries: int = key(
        2000, "Entries kept by the in-process cache (least recently used dropped).", "", ge=1
    )
    learn_interval: int = key(
        300, "Seconds between two learning passes (0 disables learning).", "s", ge=0
    )
    learn_max_per_pass: int = key(
        50, "Anomalies evaluated by one learning pass at most (the next pass goes on).", "",
        ge=1,
    )  # fmt: skip
    learn_time_budget: float = key(
        20.0,
        "A learning pass stops after this long (it runs between checks, so keep it well "
        "under [skyline] heartbeat_ttl); the next pass goes on where it stopped.",
        "s",
        gt=0,
    )
    learn_full_duration_days: int = key(
        27,
        "Default window of learning (the metric's row overrides it). Keep it shorter than "
        "[mirage] rollup_retention by at least learn_lookback, so that the windows learning "
        "compares are whole (the reference's 30 days with 30 days of rollups never are).",
        "days",
        ge=1,
    )
    learn_valid_ts_older_than: int = key(
        3661, "Only anomalies older than this are learnt from (data has settled).", "s", ge=0
    )
    learn_lookback: int = key(
        86400 * 3, "Unmatched anomalies younger than this are considered for learning.", "s",
        ge=1,
    )  # fmt: skip
    max_generations: int = key(
        5, "Default limit of learnt generations (the metric's row overrides it).", "", ge=0
    )
    max_percent_diff_from_origin: float = key(
        7.0,
        "Default: a learnt profile's features sum must be within this percent of the "
        "origin profile's (the metric's row overrides it).",
        "%",
        ge=0,
    )
