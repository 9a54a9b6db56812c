"""Anomaly-detection algorithms: pure functions on prepared series.

No Redis, SQL, settings, logging or wall clock in here (``now`` is a parameter).
See docs/algorithms.md for the algorithms, their scores, the reference quirks
reproduced by ``mode="classic"`` and the fixes of ``mode="default"``.
"""

from skyline.analysis.algorithms.batch import BatchResult, run_ensemble_batch, run_ensemble_many
from skyline.analysis.algorithms.classic import (
    Context,
    Result,
    first_hour_average,
    grubbs,
    histogram_bins,
    ks_test,
    least_squares,
    mean_subtraction_cumulation,
    median_absolute_deviation,
    stddev_from_average,
    stddev_from_moving_average,
)
from skyline.analysis.algorithms.ensemble import (
    CLASSIC_ORDER,
    ETSY_ORDER,
    Verdict,
    decide,
    run_ensemble,
    stop_early,
)
from skyline.analysis.algorithms.exceptions import Skip, check_skip
from skyline.analysis.algorithms.prepare import prepare_arrays, tail_avg
from skyline.analysis.algorithms.registry import ALGORITHMS, KERNELS

__all__ = [
    "ALGORITHMS",
    "BatchResult",
    "CLASSIC_ORDER",
    "Context",
    "ETSY_ORDER",
    "KERNELS",
    "Result",
    "Skip",
    "Verdict",
    "check_skip",
    "decide",
    "first_hour_average",
    "grubbs",
    "histogram_bins",
    "ks_test",
    "least_squares",
    "mean_subtraction_cumulation",
    "median_absolute_deviation",
    "prepare_arrays",
    "run_ensemble",
    "run_ensemble_batch",
    "run_ensemble_many",
    "stddev_from_average",
    "stddev_from_moving_average",
    "stop_early",
    "tail_avg",
]
