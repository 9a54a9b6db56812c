"""The ensemble's options: one frozen object, built once (from the settings, by the
daemon) and passed to ``run_ensemble``, ``run_ensemble_batch``, ``run_ensemble_many``
and the custom-algorithm consensus.

``EnsembleOptions.of(options, **changes)`` is how those entry points take them: the
object given (default: every default), with the keyword arguments given changing
fields (``run_ensemble(s, now=t, mode="classic")``), so no function spells the fields
again.  Only ``now`` is an argument of its own: it changes with every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from skyline.analysis.algorithms.classic import ALGORITHMS, Context, default_order

__all__ = ["EnsembleOptions", "EnsembleSettings"]


class EnsembleSettings(Protocol):
    """The settings section the options are built from (``[analyzer]``); a protocol so
    that this package imports no settings.  Read-only members: a section whose ``mode``
    is a ``Literal`` of the modes still matches."""

    @property
    def mode(self) -> str: ...
    @property
    def algorithms(self) -> Sequence[str]: ...
    @property
    def consensus(self) -> int: ...
    @property
    def min_tolerable_length(self) -> int: ...
    @property
    def stale_period(self) -> int: ...
    @property
    def max_tolerable_boredom(self) -> int: ...
    @property
    def boredom_set_size(self) -> int: ...


@dataclass(frozen=True)
class EnsembleOptions:
    """How the ensemble judges: ``mode`` (classic | default), the ``algorithms`` in the
    order run, the ``consensus`` needed, ``early_exit`` once consensus is out of reach,
    the skip checks (``min_length``, ``stale_period``, ``max_boredom``,
    ``boredom_set_size``) and the window length ``full_duration`` (first_hour_average).

    Checked when built: an unknown algorithm, a consensus below 1 or an unknown mode
    is a ``ValueError``.
    """

    mode: str = "default"
    algorithms: tuple[str, ...] = field(default_factory=default_order)
    consensus: int = 6
    min_length: int = 100
    stale_period: float = 500
    max_boredom: int = 100
    boredom_set_size: int = 1
    early_exit: bool = True
    full_duration: int = 86400

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown algorithms: {unknown}")
        if self.consensus < 1:
            raise ValueError("consensus must be >= 1")
        Context(mode=self.mode)  # validates mode

    @classmethod
    def of(cls, options: EnsembleOptions | None = None, **changes: Any) -> EnsembleOptions:
        """``options`` (default: the defaults) with ``changes``; an unknown name is a
        ``TypeError``, as an unknown keyword argument would be."""
        if options is None:
            return cls(**changes)
        return replace(options, **changes) if changes else options

    @classmethod
    def from_settings(cls, cfg: EnsembleSettings) -> EnsembleOptions:
        """The options of an ``[analyzer]``-like section."""
        return cls(cfg.mode, tuple(cfg.algorithms), cfg.consensus, cfg.min_tolerable_length,
                   cfg.stale_period, cfg.max_tolerable_boredom, cfg.boredom_set_size)  # fmt: skip

    @property
    def stop_at(self) -> int:
        """Votes against a series (False; None too in default mode) after which it can
        no longer reach consensus and stops: one more than there are algorithms when
        ``early_exit`` is off, so none stops."""
        k = len(self.algorithms)
        return k - self.consensus + 1 if self.early_exit else k + 1

    def context(self, now: float | None) -> Context:
        """The algorithms' context for a pass at ``now``."""
        return Context(mode=self.mode, now=now, full_duration=self.full_duration)
