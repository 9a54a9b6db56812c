"""``plot.png`` of a crucible run: the series, its mean and 3-sigma band, and every
point the walk-forward ensemble flagged (red), the newest point ringed when the
ensemble flags it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skyline.store.timeseries import Series  # noqa: E402


def _dates(timestamps: np.ndarray) -> np.ndarray:
    """UTC datetimes (an object array: matplotlib's date units convert it)."""
    return np.array([datetime.fromtimestamp(int(t), UTC) for t in timestamps], dtype=object)


def write_plot(series: Series, report: dict[str, Any], path: str | Path) -> Path:
    """Draw the series and the report's anomalies into ``path`` (PNG)."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    try:
        x = _dates(series.timestamps)
        v = series.values
        ax.plot(x, v, color="#1f77b4", linewidth=0.8, label="value")
        if len(v) > 1:
            mean, std = float(v.mean()), float(v.std(ddof=1))
            ax.axhline(mean, color="grey", linewidth=0.8, linestyle="--", label="mean")
            ax.axhspan(mean - 3 * std, mean + 3 * std, color="grey", alpha=0.15,
                       label="mean ± 3σ")  # fmt: skip
        flagged = report.get("walk", {}).get("anomalies", [])
        if flagged:
            fx = _dates(np.array([a["timestamp"] for a in flagged]))
            ax.scatter(fx, [a["value"] for a in flagged], color="red", s=18, zorder=3,
                       label=f"anomalous ({len(flagged)})")  # fmt: skip
        ens = report.get("ensemble", {})
        if ens.get("anomalous") and ens.get("timestamp") is not None:
            ax.scatter(_dates(np.array([ens["timestamp"]])), [ens["value"]], s=90,
                       facecolors="none", edgecolors="red", linewidths=1.5, zorder=4,
                       label="newest point anomalous")  # fmt: skip
        source = report.get("input", {}).get("source", "")
        verdict = {True: "ANOMALOUS", False: "not anomalous", None: "not analysed"}[
            ens.get("anomalous")
        ]
        ax.set_title(f"{source} — {report.get('mode')} mode, consensus "
                     f"{report.get('consensus')}: newest point {verdict}", fontsize=10)  # fmt: skip
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d\n%H:%M"))
        ax.set_xlabel("time (UTC)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
