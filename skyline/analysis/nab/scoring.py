"""NAB scoring, implemented from NAB's published rules (NAB's README and scorer,
https://github.com/numenta/NAB).

Per file: rows before the probationary cut (min(floor(0.15 n), 750)) are ignored.
Each labelled window [L, R] (row indices, inclusive, width W) is worth the value of
its earliest detection, where a detection at row i in the window is worth
``tp * sig(x) / sig(-1)`` with ``x = -(R - i + 1) / W`` (-1 at the left edge) and
``sig(x) = 2 / (1 + exp(5 x)) - 1``; a window with no detection costs ``-fn``.
A detection outside every window costs ``-fp`` when no window ended before it, else
``fp * sig((i - R_prev) / W_prev)`` (R_prev, W_prev: the last window that ended
before it), which is about 0 just after a window and -fp three widths later.

One threshold per profile is chosen for the whole corpus: the candidate (every
distinct score, plus 1.1 = never detect) with the highest raw score, ties going to
the higher threshold.  Normalised score: ``100 (S - S_null) / (S_perfect - S_null)``
with ``S_perfect = tp * windows`` and ``S_null = -fn * windows``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}
NEVER = 1.1  # the threshold at which nothing is detected


def sigmoid(x: float) -> float:
    """NAB's scaled sigmoid: ~1 well before, 0 at, -1 well after position 0."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


_EDGE = sigmoid(-1.0)


def probation_rows(n: int) -> int:
    return min(n * 15 // 100, 750)


@dataclass
class FileCase:
    """One file prepared for scoring: its scores and each row's role."""

    name: str
    scores: np.ndarray  # anomaly score per row (NaN -> 0)
    window_of_row: np.ndarray  # window index per row, -1 outside every window
    position: np.ndarray  # x: relative position (in window widths), NaN = no window before
    n_windows: int
    probation: int = 0
    window_bounds: list[tuple[int, int]] = field(default_factory=list)

    def row_value(self, tp: float, fp: float) -> np.ndarray:
        """The value a detection on each row would contribute (before window dedup)."""
        vals = np.empty(len(self.scores))
        for i, x in enumerate(self.position):
            if self.window_of_row[i] >= 0:
                vals[i] = tp * sigmoid(float(x)) / _EDGE
            elif math.isnan(x):
                vals[i] = -fp
            else:
                vals[i] = fp * sigmoid(float(x))
        return vals


def window_rows(
    timestamps: np.ndarray, windows: list[tuple[float, float]]
) -> list[tuple[int, int]]:
    """Row index bounds [L, R] of each window (timestamps sorted ascending)."""
    out = []
    for start, end in windows:
        lo = int(np.searchsorted(timestamps, start, side="left"))
        hi = int(np.searchsorted(timestamps, end, side="right")) - 1
        if hi >= lo:
            out.append((lo, hi))
    return out


def prepare(
    name: str, timestamps: np.ndarray, scores: np.ndarray, windows: list[tuple[float, float]]
) -> FileCase:
    """Lay out one file: window membership and relative position of every row."""
    n = len(scores)
    bounds = window_rows(np.asarray(timestamps, dtype=float), windows)
    window_of_row = np.full(n, -1, dtype=np.int64)
    position = np.full(n, np.nan)
    prev: tuple[int, int] | None = None
    b = 0
    for i in range(n):
        while b < len(bounds) and bounds[b][1] < i:
            prev = bounds[b]
            b += 1
        if b < len(bounds) and bounds[b][0] <= i <= bounds[b][1]:
            lo, hi = bounds[b]
            window_of_row[i] = b
            position[i] = -(hi - i + 1) / (hi - lo + 1)
        elif prev is not None:
            position[i] = (i - prev[1]) / (prev[1] - prev[0] + 1)
    clean = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0, posinf=1.0, neginf=0.0)
    return FileCase(name, clean, window_of_row, position, len(bounds), probation_rows(n), bounds)


def score_file(case: FileCase, threshold: float, profile: dict[str, float]) -> dict:
    """Raw score and counts of one file at one threshold."""
    tp_w, fp_w, fn_w = profile["tp"], profile["fp"], profile["fn"]
    values = case.row_value(tp_w, fp_w)
    best: dict[int, float] = {}
    fp_sum, n_fp = 0.0, 0
    for i in range(case.probation, len(case.scores)):
        if case.scores[i] < threshold:
            continue
        w = int(case.window_of_row[i])
        if w >= 0:
            best.setdefault(w, values[i])  # earliest detection only
        else:
            fp_sum += values[i]
            n_fp += 1
    n_fn = case.n_windows - len(best)
    raw = sum(best.values()) + fp_sum - fn_w * n_fn
    return {
        "raw": raw,
        "tp": len(best),
        "fn": n_fn,
        "fp": n_fp,
        "windows": case.n_windows,
    }


def optimise_threshold(cases: list[FileCase], profile: dict[str, float]) -> tuple[float, float]:
    """(threshold, raw score) maximising the corpus raw score; ties -> higher threshold.

    Sweeps the thresholds from high to low: lowering the threshold to the next
    distinct score adds that score's rows as detections; a window's value is that of
    its earliest detected row, which is also its most valuable one.
    """
    tp_w, fp_w, fn_w = profile["tp"], profile["fp"], profile["fn"]
    all_scores, all_vals, all_win = [], [], []
    offset = 0
    for case in cases:
        sl = slice(case.probation, len(case.scores))
        all_scores.append(case.scores[sl])
        all_vals.append(case.row_value(tp_w, fp_w)[sl])
        win = case.window_of_row[sl].copy()
        win[win >= 0] += offset
        all_win.append(win)
        offset += case.n_windows
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    vals = np.concatenate(all_vals) if all_vals else np.zeros(0)
    wins = np.concatenate(all_win) if all_win else np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable").tolist()
    scores_l, vals_l, wins_l = scores.tolist(), vals.tolist(), wins.tolist()
    best_val: list[float | None] = [None] * offset
    total = -fn_w * offset
    best_threshold, best_total = NEVER, total
    k = 0
    while k < len(order):
        s = scores_l[order[k]]
        while k < len(order) and scores_l[order[k]] == s:
            i = order[k]
            w, v = wins_l[i], vals_l[i]
            if w < 0:
                total += v
            else:
                old = best_val[w]
                if old is None:
                    best_val[w] = v
                    total += v + fn_w
                elif v > old:
                    total += v - old
                    best_val[w] = v
            k += 1
        if total > best_total + 1e-12:
            best_threshold, best_total = float(s), total
    return best_threshold, best_total


def normalise(raw: float, n_windows: int, profile: dict[str, float]) -> float:
    perfect = profile["tp"] * n_windows
    null = -profile["fn"] * n_windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(cases: list[FileCase], profiles: dict[str, dict] | None = None) -> dict:
    """Per-profile threshold, raw and normalised scores, with a per-file breakdown."""
    out: dict = {}
    n_windows = sum(c.n_windows for c in cases)
    for pname, profile in (profiles or PROFILES).items():
        threshold, raw = optimise_threshold(cases, profile)
        files = {c.name: score_file(c, threshold, profile) for c in cases}
        out[pname] = {
            "score": round(normalise(raw, n_windows, profile), 4),
            "threshold": threshold,
            "raw": raw,
            "null_raw": -profile["fn"] * n_windows,
            "perfect_raw": profile["tp"] * n_windows,
            "weights": dict(profile),
            "files": files,
        }
    return {"windows": n_windows, "files": len(cases), "profiles": out}
