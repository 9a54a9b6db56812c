"""One ionosphere check: an anomalous window against a metric's profiles.

Order: features first (every enabled profile of the given ``full_duration`` — and,
for a window read from the rollup history, of the history's resolution — at once; the first matching profile in last-matched order wins, as in the reference),
then motifs (the best-distance match over all sizes).  Pure: the caller supplies
the window and the profile data and does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyline.analysis.ionosphere.features import Features, extract
from skyline.analysis.ionosphere.matching import Mass, features_compare, motif_compare, stack_series
from skyline.analysis.ionosphere.profile_data import (
    CorruptProfile,
    ProfileData,
    ProfileMeta,
    feature_vector,
)


@dataclass(frozen=True)
class Match:
    profile_id: int
    match_type: str  # "features" or "motif"
    distance: float  # percent_different for features, normalised distance for motifs
    features_sum: float | None = None
    common: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckResult:
    match: Match | None = None
    compared: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    features: Features | None = None
    best: dict[str, Any] = field(default_factory=dict)  # nearest miss, for the reason
    # raw windows by duration, of the durations the metric has learn profiles at (kept
    # for learning when nothing matched)
    windows: dict[int, np.ndarray] = field(default_factory=dict)


def check(values: np.ndarray, metas: list[ProfileMeta],
          data: dict[int, ProfileData | CorruptProfile], full_duration: int, cfg: Any,
          features: Features | None = None, resolution: int | None = None) -> CheckResult:  # fmt: skip
    """Compare ``values`` (the window, oldest first) with the profiles of
    ``full_duration`` (and of ``resolution`` unless None: a rollup window is never
    compared with a raw profile); FeaturesError if the window has no usable features."""
    out = CheckResult()
    usable: list[ProfileData] = []
    for m in metas:
        if m.full_duration != full_duration or resolution not in (None, m.resolution):
            continue
        d = data.get(m.id)
        if isinstance(d, ProfileData):
            usable.append(d)
        else:
            out.refused.append((m.id, str(d) if d is not None else f"profile {m.id}: no data"))
    out.compared = [d.id for d in usable]
    if not usable:
        return out
    feats = features if features is not None else extract(values)
    out.features = feats
    out.match = _features_match(feats, usable, cfg, out)
    if out.match is None and cfg.motifs_enabled:
        out.match = _motif_match(values, usable, cfg, out)
    return out


def _features_match(feats: Features, usable: list[ProfileData], cfg: Any,
                    out: CheckResult) -> Match | None:  # fmt: skip
    calc = feature_vector(feats.ids, feats.values)
    res = features_compare(calc, np.stack([d.features for d in usable]),
                           percent_similar=cfg.features_percent_similar,
                           min_common=cfg.min_common_features,
                           tolerance_percent=cfg.feature_tolerance_percent,
                           tolerance_share=cfg.feature_tolerance_share)  # fmt: skip
    nearest = int(np.argmin(res.percent_different))
    out.best["percent_different"] = float(res.percent_different[nearest])
    hits = np.flatnonzero(res.matched)
    if not len(hits):
        return None
    i = int(hits[0])
    return Match(usable[i].id, "features", float(res.percent_different[i]),
                 float(res.calc_sum[i]), int(res.common[i]),
                 {"percent_different": float(res.percent_different[i]),
                  "fp_sum": float(res.fp_sum[i]), "calc_sum": float(res.calc_sum[i])})  # fmt: skip


def _motif_match(values: np.ndarray, usable: list[ProfileData], cfg: Any,
                 out: CheckResult) -> Match | None:  # fmt: skip
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    series, lengths = stack_series([d.series for d in usable])
    sizes = [m for m in sorted(set(cfg.motif_sizes)) if 3 <= m <= len(x)]
    if not sizes or not series.size:
        return None
    mass = Mass(series, lengths, max(sizes))
    best: Match | None = None
    for size in sizes:
        r = motif_compare(x, mass, size, max_distance=cfg.motif_max_distance,
                          padding_percent=cfg.motif_range_padding_percent)  # fmt: skip
        finite = np.isfinite(r.distance)
        if finite.any():
            near = float(r.distance[finite].min())
            out.best["motif_distance"] = min(out.best.get("motif_distance", np.inf), near)
        for i in np.flatnonzero(r.matched):
            if best is None or r.distance[i] < best.distance:
                best = Match(usable[i].id, "motif", float(r.distance[i]), detail={
                    "distance": float(r.distance[i]), "size": size,
                    "start_index": int(r.index[i])})  # fmt: skip
    return best
