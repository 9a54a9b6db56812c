"""The daemons of the design, and which of them are built in this version."""

from __future__ import annotations

import importlib.util

# In start order: storage-facing daemons first, the web UI last.
DAEMONS: tuple[str, ...] = (
    "thunder",
    "horizon",
    "flux",
    "panorama",
    "alerters",
    "analyzer",
    "mirage",
    "ionosphere",
    "boundary",
    "luminosity",
    "crucible",
    "webapp",
)


def is_built(name: str) -> bool:
    """A daemon is built when its package has a ``__main__`` module."""
    try:
        return importlib.util.find_spec(f"skyline.{name}.__main__") is not None
    except ModuleNotFoundError:
        return False


def built() -> list[str]:
    return [name for name in DAEMONS if is_built(name)]
