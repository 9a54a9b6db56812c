"""What an algorithm is: its ``Context``, its ``Result``, the ``Algorithm`` entry and the
registry (``ALGORITHMS``) each algorithm module adds itself to with ``@algorithm``.

A *kernel* takes a :class:`~skyline.analysis.algorithms.prepare.Block` (rows of
equal-length prepared series) and a ``Context`` and returns ``(votes, scores)``:
``votes`` int8 per row (``1`` anomalous, ``0`` not, ``-1`` None = cannot judge) and
``scores`` float64 per row.  The ``Algorithm`` made from it is also the per-series
function: ``grubbs(series, ctx) -> Result`` runs the kernel on a block of one row, so
a series gets bit-identical results alone or inside a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from skyline.analysis.algorithms.prepare import Block, as_series
from skyline.registry import Registry

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
    "run_kernel",
]

MODES = ("classic", "default")
TRUE, FALSE, NONE = 1, 0, -1
Votes = tuple[np.ndarray, np.ndarray]  # a kernel's (votes, scores), one of each per row
Kernel = Callable[[Block, "Context"], Votes]
_VOTE = {TRUE: True, FALSE: False, NONE: None}


@dataclass(frozen=True)
class Context:
    """How to judge: ``mode``, the wall clock ``now`` (classic ks_test only) and the
    analysed window length ``full_duration`` in seconds (first_hour_average)."""

    mode: str = "default"
    now: float | None = None
    full_duration: int = 86400

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")

    @property
    def classic(self) -> bool:
        return self.mode == "classic"


@dataclass(frozen=True)
class Result:
    """One algorithm's verdict on one series: ``anomalous`` (None = cannot judge or
    error) and a continuous ``score`` (see docs/algorithms.md; 0.0 when not computable)."""

    anomalous: bool | None
    score: float


DEFAULT_CONTEXT = Context()


@dataclass(eq=False)
class Algorithm:
    """One registered algorithm: its ``name``, its ``kernel``, its ``position`` in the
    default ensemble (None: run only when named in ``[analyzer] algorithms``) and its
    position in Etsy's original order (the reference's nine only).  Calling it judges
    one series.  Not frozen, so that a test can swap the kernel (monkeypatch.setattr)."""

    name: str
    kernel: Kernel
    position: int | None = None
    etsy_position: int | None = None

    def __call__(self, series: Any, ctx: Context = DEFAULT_CONTEXT) -> Result:
        return evaluate(self.name, series, ctx)


ALGORITHMS: Registry[Algorithm] = Registry("algorithm", "skyline.analysis.algorithms.classic")


def algorithm(
    *, position: int | None = None, etsy_position: int | None = None
) -> Callable[[Kernel], Algorithm]:
    """Register the decorated kernel as the algorithm named after the function; the
    module-level name then holds the ``Algorithm`` (a per-series function)."""

    def make(kernel: Kernel) -> Algorithm:
        name = kernel.__name__
        entry = Algorithm(name, kernel, position, etsy_position)
        return ALGORITHMS.add(name, entry, position=position, module=kernel.__module__)

    return make


def default_order() -> tuple[str, ...]:
    """The default ensemble: the algorithms registered with a position, in order."""
    return tuple(ALGORITHMS.defaults())


def etsy_order() -> tuple[str, ...]:
    """Etsy's original order of the reference's algorithms (also MIRAGE_ALGORITHMS)."""
    ranked = [(a.etsy_position, n) for n, a in ALGORITHMS.items() if a.etsy_position is not None]
    return tuple(n for _, n in sorted(ranked))


def run_kernel(name: str, block: Block, ctx: Context) -> Votes:
    kernel = ALGORITHMS.get(name).kernel
    with np.errstate(all="ignore"):
        return kernel(block, ctx)


def evaluate(name: str, series: Any, ctx: Context = DEFAULT_CONTEXT) -> Result:
    """Run one algorithm on one series; any error gives ``Result(None, 0.0)``."""
    try:
        s = as_series(series)
        if len(s) == 0:
            return Result(None, 0.0)
        votes, scores = run_kernel(name, Block.of(s), ctx)
        return Result(_VOTE[int(votes[0])], float(scores[0]))
    except Exception:  # noqa: BLE001 - an algorithm error is a None vote, as in the reference
        return Result(None, 0.0)
