"""Settings: the typed, validated configuration every other package receives as an argument.

Owns the TOML loader, the environment overrides and one section model per daemon
(``model.py`` assembles them); ``doc.py`` generates ``etc/skyline.conf`` and
``docs/configuration.md`` from the models.

Extension names (the ``[analyzer]`` / ``[mirage]`` algorithms) are not spelled here:
the default ensemble and the check of a configured list ask the algorithm registry
(``skyline.registry``), found by its package name (``base.ALGORITHM_PACKAGE``) through
``Registry.of`` when a value is checked, a default made or the docs rendered -- never at
import time, and without a static import of ``skyline.analysis`` (the algorithm modules
are light: their scipy/statsmodels imports wait for the first computation).

The extension points that declare their own settings are discovered by package name
with ``importlib`` (``extensions.py``), not imported: the alert channels of
skyline.alerting.channels make the ``[alerters.<channel>]`` tables and the channel names
rules accept, and horizon's protocols (skyline.ingest.horizon.protocols) make its
``[horizon]`` port keys.  Those modules import only ``skyline.settings.base`` from here.
``model.rebuild()`` builds the models again after a registry changed (tests).

May import: ``skyline.registry`` (which imports nothing from ``skyline``); nothing else
from ``skyline``.
"""

from skyline.settings.model import (  # re-exported section models
    SECTIONS,
    AlertersSection,
    AlertRule,
    AnalyzerSection,
    BoundaryRule,
    FluxSection,
    HorizonSection,
    IonosphereSection,
    PanoramaSection,
    Settings,
    SettingsError,
    key,
    load_settings,
    redacted,
)

__all__ = [
    "SECTIONS",
    "AlertRule",
    "AlertersSection",
    "AnalyzerSection",
    "BoundaryRule",
    "FluxSection",
    "HorizonSection",
    "IonosphereSection",
    "PanoramaSection",
    "Settings",
    "SettingsError",
    "key",
    "load_settings",
    "redacted",
]
