"""The PNG graph in email and Slack alerts: the metric's window, its mean and 3-sigma
band, and the anomalous datapoint marked (matplotlib, rendered server-side)."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np

from skyline.store.timeseries import Series


def render_png(series: Series, metric: str, anomaly_ts: int, anomaly_value: float) -> bytes:
    import matplotlib  # imported here: only alerting needs it, and it is slow to import

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=100)
    ax = fig.add_subplot()
    # object arrays of UTC datetimes: matplotlib's date units convert them
    when = np.array([dt.datetime.fromtimestamp(int(t), dt.UTC) for t in series.timestamps])
    ax.plot(when, series.values, color="#1f77b4", linewidth=0.8, label=metric[:60])
    if len(series.values) > 1:
        mean, std = float(np.mean(series.values)), float(np.std(series.values))
        ax.axhline(mean, color="grey", linewidth=0.6, linestyle="--", label="mean")
        ax.axhspan(mean - 3 * std, mean + 3 * std, color="grey", alpha=0.12, label="3 sigma")
    ax.scatter(np.array([dt.datetime.fromtimestamp(anomaly_ts, dt.UTC)]), [anomaly_value], color="red",
               zorder=5, s=30, label="anomaly")  # fmt: skip
    ax.set_title(metric[:90], fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
