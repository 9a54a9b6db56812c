"""The daemons of the design, and which of them are built in this version."""

from __future__ import annotations

import importlib.util

# In start order: storage-facing daemons first, the web UI last; each with the
# module ``python -m`` runs.
MODULES: dict[str, str] = {
    "thunder": "skyline.alerting.thunder",
    "horizon": "skyline.ingest.horizon",
    "flux": "skyline.ingest.flux",
    "vista": "skyline.ingest.vista",
    "panorama": "skyline.events.panorama",
    "alerters": "skyline.alerting",
    "analyzer": "skyline.analysis.analyzer",
    "mirage": "skyline.analysis.mirage",
    "ionosphere": "skyline.analysis.ionosphere",
    "boundary": "skyline.analysis.boundary",
    "luminosity": "skyline.analysis.luminosity",
    "crucible": "skyline.analysis.crucible",
    "webapp": "skyline.webapp",
}
DAEMONS: tuple[str, ...] = tuple(MODULES)


def module(name: str) -> str:
    """The module that runs daemon ``name`` (``python -m <module>``)."""
    return MODULES[name]


def is_built(name: str) -> bool:
    """A daemon is built when its package has a ``__main__`` module."""
    try:
        return importlib.util.find_spec(f"{MODULES[name]}.__main__") is not None
    except (KeyError, ModuleNotFoundError):
        return False


def built() -> list[str]:
    return [name for name in DAEMONS if is_built(name)]
