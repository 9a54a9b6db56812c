"""Anomaly-detection algorithms: pure functions on prepared series.

No Redis, SQL, logging or wall clock in here (``now`` is a parameter), and settings
only as an argument (``EnsembleOptions.from_settings``).  The classic algorithms are
the modules of ``classic/``, one per algorithm, found through the ``ALGORITHMS``
registry (docs/extending.md, "Adding an algorithm").  See docs/algorithms.md for the
algorithms, their scores, the reference quirks reproduced by ``mode="classic"`` and
the fixes of ``mode="default"``.
"""

from skyline.analysis.algorithms.batch import (
    BatchResult,
    run_ensemble_batch,
    run_ensemble_many,
    settle_early,
)
from skyline.analysis.algorithms.classic import ALGORITHMS, Algorithm, Context, Result
from skyline.analysis.algorithms.ensemble import (
    CLASSIC_ORDER,
    ETSY_ORDER,
    Verdict,
    decide,
    run_ensemble,
    stop_early,
)
from skyline.analysis.algorithms.exceptions import Skip, check_skip
from skyline.analysis.algorithms.options import EnsembleOptions
from skyline.analysis.algorithms.prepare import (
    is_counter,
    non_negative_derivative,
    prepare_arrays,
    tail_avg,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "BatchResult",
    "CLASSIC_ORDER",
    "Context",
    "ETSY_ORDER",
    "EnsembleOptions",
    "Result",
    "Skip",
    "Verdict",
    "check_skip",
    "decide",
    "is_counter",
    "non_negative_derivative",
    "prepare_arrays",
    "run_ensemble",
    "run_ensemble_batch",
    "run_ensemble_many",
    "settle_early",
    "stop_early",
    "tail_avg",
]
