"""The streaming detector interface and the registry of streaming detectors.

A streaming detector sees one series, one point at a time, in arrival order.  For
every point the caller first asks for a score and only then lets the detector learn
the point, so a score can never depend on the point itself or on later points::

    det = make_detector("spike_level")
    for ts, value in rows:
        score = det.score_one(ts, value)   # uses rows before this one only
        det.learn_one(ts, value)

Scoring is separate from deciding: ``score_one`` returns an anomaly score in
[0, 1] and the caller applies a threshold (the NAB harness optimises one threshold
for a whole corpus; the analyzer takes one from settings).

**Neutral score.** While a detector is warming up (too little history to judge)
it returns ``NEUTRAL_SCORE`` = 0.0, meaning "no evidence of an anomaly".  0.0 and
not 0.5 because a score is only ever compared with a threshold: with 0.5 a warm-up
point would be flagged whenever the chosen threshold is at or below 0.5, which in
NAB is common (thresholds are picked per corpus and scores of good detectors sit
low), turning every warm-up row after NAB's probationary period into a false
positive.  0.0 is never an alert unless the caller asks for threshold 0.  The same
value is returned for points that cannot be judged (NaN or infinite values).

Detectors are registered as zero-argument factories so that each series gets a
fresh instance (no state shared between files or metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

NEUTRAL_SCORE = 0.0


@runtime_checkable
class Detector(Protocol):
    """One series' streaming anomaly detector."""

    def learn_one(self, timestamp: float, value: float) -> None:
        """Add one observed point (unix seconds, value) to the detector's state."""

    def score_one(self, timestamp: float, value: float) -> float:
        """Anomaly score in [0, 1] of a point given what was learned so far.

        Must not change the detector's state in a way that depends on ``value``
        being learned; returns ``NEUTRAL_SCORE`` while warming up.
        """
        ...


def _null() -> Detector:
    return NullDetector()


def _spike_level() -> Detector:
    from skyline.analysis.algorithms.stepping import StreamAdapter, default_vector_detector

    return StreamAdapter(default_vector_detector())


def _classic() -> Detector:
    from skyline.analysis.algorithms.classic_stream import classic

    return classic()


def _ensemble() -> Detector:
    from skyline.analysis.algorithms.classic_stream import ensemble

    return ensemble()


class NullDetector:
    """Never detects: every score is 0.0 (NAB's null detector)."""

    def learn_one(self, timestamp: float, value: float) -> None:
        return None

    def score_one(self, timestamp: float, value: float) -> float:
        return 0.0


DETECTORS: dict[str, Callable[[], Detector]] = {
    "spike_level": _spike_level,
    "null": _null,
    "classic": _classic,
    "ensemble": _ensemble,
}


def register(name: str, factory: Callable[[], Detector]) -> None:
    """Add (or replace) a detector factory under ``name``."""
    DETECTORS[name] = factory


def make_detector(name: str) -> Detector:
    """A fresh detector of the registered kind ``name`` (KeyError names the choices)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise KeyError(
            f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}"
        ) from None
    return factory()
