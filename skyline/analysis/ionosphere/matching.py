"""Matching an anomalous series against features profiles: pure numpy, no I/O.

Two tests, both vectorised over all the profiles of a metric at once:

1. Features (the reference's comparison).  For each profile, take the feature ids
   both sides have, sum each side, and
   ``percent_different = |calc_sum - fp_sum| / |fp_sum| * 100`` (0 when both sums
   are 0, infinite when only the profile's is).  A match is "almost equal" sums
   (``|calc_sum - fp_sum| < 1.5e-6``, numpy's 6-decimal rule) or
   ``percent_different < percent_similar``; optionally (``tolerance_percent > 0``)
   also a share of the common features each within ``tolerance_percent``.

2. Motifs.  The last ``m`` points of the anomalous series (the shape that was
   judged anomalous) are searched in every window of each profile's series (MASS:
   z-normalised Euclidean distances of all windows through one FFT convolution).
   The distance is divided by ``sqrt(m)`` so one threshold fits every size
   (0 identical shape, 2 opposite shape).  A match needs the best window within
   ``max_distance`` and the subsequence's values within that window's min/max padded
   by ``padding_percent`` of its range (a shape repeated at another level, or with a
   taller spike, is not the same thing).

The tests hold slow, obviously correct twins of ``features_compare`` and
``mass_distances``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

ALMOST_EQUAL = 1.5e-6
FLAT_VAR = 1e-10  # a window whose variance (after normalising its row) is below this is flat


@dataclass(frozen=True)
class FeaturesResult:
    """Per profile (aligned with the input rows)."""

    calc_sum: np.ndarray
    fp_sum: np.ndarray
    percent_different: np.ndarray
    common: np.ndarray  # number of common features
    matched: np.ndarray  # bool


def percent_different(calc_sum: np.ndarray, fp_sum: np.ndarray) -> np.ndarray:
    """``|calc - fp| / |fp| * 100``; 0 when both are 0; inf when only ``fp`` is 0."""
    calc = np.asarray(calc_sum, np.float64)
    fp = np.asarray(fp_sum, np.float64)
    diff = np.abs(calc - fp)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = diff / np.abs(fp) * 100.0
    out = np.where(fp == 0, np.where(diff == 0, 0.0, np.inf), out)
    return out


def features_compare(
    calc: np.ndarray,
    profiles: np.ndarray,
    *,
    percent_similar: float,
    min_common: int = 1,
    tolerance_percent: float = 0.0,
    tolerance_share: float = 1.0,
) -> FeaturesResult:
    """Compare one feature vector ``calc`` (F,) with ``profiles`` (k, F); NaN = absent."""
    calc = np.asarray(calc, np.float64)
    profiles = np.asarray(profiles, np.float64).reshape(-1, len(calc))
    common = ~np.isnan(profiles) & ~np.isnan(calc)[None, :]
    a = np.where(common, calc[None, :], 0.0)
    p = np.where(common, profiles, 0.0)
    calc_sum, fp_sum = a.sum(axis=1), p.sum(axis=1)
    pdiff = percent_different(calc_sum, fp_sum)
    almost = np.abs(calc_sum - fp_sum) < ALMOST_EQUAL
    n_common = common.sum(axis=1)
    matched = (n_common >= min_common) & (almost | (pdiff < percent_similar))
    if tolerance_percent > 0:
        each = percent_different(a, p) <= tolerance_percent
        share = np.where(n_common > 0, (each & common).sum(axis=1) / np.maximum(n_common, 1), 0)
        matched &= share >= tolerance_share
    return FeaturesResult(calc_sum, fp_sum, pdiff, n_common, matched)


def _normalise_rows(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Shift and scale each row by its own mean/std (z-normalised distances do not
    change) so the sliding sums below keep their precision; padding stays 0."""
    mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
    n = np.maximum(lengths, 1)[:, None]
    mean = np.where(mask, x, 0).sum(axis=1, keepdims=True) / n
    centred = np.where(mask, x - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / n)
    return centred / np.where(std > 0, std, 1.0)


class Mass:
    """MASS over a fixed set of rows: the rows are normalised, their running sums and
    their FFT computed once, then each query costs one inverse FFT."""

    def __init__(self, series: np.ndarray, lengths: np.ndarray, max_m: int) -> None:
        self.raw = np.asarray(series, np.float64)
        self.lengths = np.asarray(lengths, np.int64)
        k, self.n = self.raw.shape
        x = _normalise_rows(self.raw, self.lengths)
        zero = np.zeros((k, 1))
        self.csum = np.concatenate([zero, np.cumsum(x, axis=1)], axis=1)
        self.csq = np.concatenate([zero, np.cumsum(x * x, axis=1)], axis=1)
        self.size = fft.next_fast_len(max(self.n + max_m, 2), real=True)
        self.fx = fft.rfft(x, self.size, axis=1)

    def distances(self, query: np.ndarray) -> np.ndarray:
        """Normalised z-distances (k, n-m+1) of ``query`` (m,) to every window of each
        row; inf for windows past a row's end.  Flat vs flat is 0, flat vs not flat is
        1 (stumpy's convention divided by sqrt(m))."""
        q = np.asarray(query, np.float64)
        m, k = len(q), self.raw.shape[0]
        w = self.n - m + 1
        if w <= 0:
            return np.full((k, 0), np.inf)
        if m + self.n > self.size:
            raise ValueError(f"query of {m} points is longer than this Mass was built for")
        q = q - q.mean()
        q_std = float(q.std())
        mu = (self.csum[:, m:] - self.csum[:, :-m]) / m
        var = (self.csq[:, m:] - self.csq[:, :-m]) / m - mu * mu
        flat_t = var < FLAT_VAR
        if q_std**2 < FLAT_VAR * max(1.0, float(np.abs(q).max(initial=0)) ** 2):
            out = np.where(flat_t, 0.0, 1.0)
        else:
            prod = self.fx * fft.rfft(q[::-1], self.size)[None, :]
            dots = fft.irfft(prod, self.size, axis=1)[:, m - 1 : m - 1 + w]
            var[flat_t] = 1.0
            corr = dots / np.sqrt(var)  # dots use a centred q, so no mean term
            corr *= 1.0 / (m * q_std)
            np.clip(corr, -1.0, 1.0, out=corr)
            out = np.sqrt(2.0 * (1.0 - corr))
            out[flat_t] = 1.0
        out[np.arange(w)[None, :] > (self.lengths - m)[:, None]] = np.inf
        return out


def mass_distances(series: np.ndarray, lengths: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``Mass(series, lengths, len(query)).distances(query)`` for one query."""
    return Mass(series, lengths, len(query)).distances(query)


@dataclass(frozen=True)
class MotifResult:
    """Best window per profile row for one subsequence size."""

    size: int
    distance: np.ndarray  # (k,) inf when the row is too short
    index: np.ndarray  # (k,) start of the best window in the profile series
    in_range: np.ndarray  # (k,) bool
    matched: np.ndarray  # (k,) bool


def motif_compare(values: np.ndarray, mass: Mass, size: int, *,
                  max_distance: float, padding_percent: float,
                  min_ratio: float = 1.1) -> MotifResult:  # fmt: skip
    """Search the last ``size`` points of ``values`` in each profile row."""
    series, lengths = mass.raw, mass.lengths
    k = series.shape[0]
    q = np.asarray(values, np.float64)[-size:]
    eligible = (lengths >= int(np.ceil(size * min_ratio))) & (len(q) == size)
    if not eligible.any():
        inf = np.full(k, np.inf)
        return MotifResult(size, inf, np.zeros(k, np.int64), np.zeros(k, bool), np.zeros(k, bool))
    d = mass.distances(q)
    d[~eligible] = np.inf
    index = np.argmin(d, axis=1)
    best = d[np.arange(k), index]
    windows = np.lib.stride_tricks.sliding_window_view(series, size, axis=1)[np.arange(k), index]
    lo, hi = windows.min(axis=1), windows.max(axis=1)
    pad = np.maximum(hi - lo, 0.0) * padding_percent / 100.0
    pad = np.where(pad > 0, pad, np.abs(hi) * padding_percent / 100.0)
    in_range = (q.min() >= lo - pad) & (q.max() <= hi + pad)
    matched = eligible & np.isfinite(best) & (best <= max_distance) & in_range
    return MotifResult(size, best, index, in_range, matched)


def stack_series(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of different lengths as one zero-padded matrix and their lengths."""
    lengths = np.array([len(r) for r in rows], np.int64)
    out = np.zeros((len(rows), int(lengths.max(initial=0))), np.float64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths
