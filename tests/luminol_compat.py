"""LinkedIn luminol 0.4 on numpy 2: the one place that makes it importable and usable.

luminol's ``TimeSeries`` statistics call ``numpy.asscalar``, removed in numpy 1.23.
``correlator()`` provides it (as ``ndarray.item()``, what ``asscalar`` was) before
luminol is imported, then returns luminol's ``Correlator``.  Skyline's own
correlation (``skyline.analysis.luminosity.correlate``) does not use luminol; the tests use it
as the slow, obviously-correct twin.
"""

from __future__ import annotations

from typing import Any

import numpy


def _asscalar(a: Any) -> Any:
    return numpy.asarray(a).item()


def install() -> None:
    """Give numpy an ``asscalar`` if it has none (numpy >= 1.23)."""
    if not hasattr(numpy, "asscalar"):
        numpy.asscalar = _asscalar  # type: ignore[attr-defined]


def correlator() -> Any:
    """luminol's ``Correlator`` class, usable on this numpy."""
    install()
    from luminol.correlator import Correlator

    return Correlator
