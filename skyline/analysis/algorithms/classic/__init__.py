"""The "three-sigma" algorithms of earthgecko Skyline: one module per algorithm.

Each module defines a kernel over a :class:`~skyline.analysis.algorithms.prepare.Block`
and registers it with ``@algorithm(position=...)`` in ``ALGORITHMS`` (a
``skyline.registry.Registry``); ``ALGORITHMS.load()`` imports every module of this
folder, so adding an algorithm is adding one file (docs/extending.md, "Adding an
algorithm").  ``position`` places it in the default ensemble (``default_order()``,
the default of ``[analyzer] algorithms``); modules whose name starts with ``_``
(``_base``: the contract and the registry; ``_shared``: the kernels' helpers) define
no algorithm; the kernels' helpers (``sigma_test``, ``judge``, ``ratio``) are
re-exported here for new algorithms.  The registered ``Algorithm`` is also the per-series function:
``from skyline.analysis.algorithms.classic.grubbs import grubbs; grubbs(series, ctx)``.

``Context.mode`` selects ``"classic"`` (reproduce the reference verdicts, quirks
included) or ``"default"`` (quirks fixed).  Every quirk and fix, and the meaning of
each score, is in ``docs/algorithms.md``.  No I/O, logging, settings or clock in
here: ``Context.now`` is only read by classic-mode ``ks_test``.
"""

from skyline.analysis.algorithms.classic._base import (
    ALGORITHMS,
    DEFAULT_CONTEXT,
    FALSE,
    MODES,
    NONE,
    TRUE,
    Algorithm,
    Context,
    Kernel,
    Result,
    Votes,
    algorithm,
    default_order,
    etsy_order,
    evaluate,
    run_kernel,
)
from skyline.analysis.algorithms.classic._shared import judge, ratio, sigma_test

__all__ = [
    "ALGORITHMS",
    "DEFAULT_CONTEXT",
    "FALSE",
    "MODES",
    "NONE",
    "TRUE",
    "Algorithm",
    "Context",
    "Kernel",
    "Result",
    "Votes",
    "algorithm",
    "default_order",
    "etsy_order",
    "evaluate",
    "judge",
    "ratio",
    "run_kernel",
    "sigma_test",
]
