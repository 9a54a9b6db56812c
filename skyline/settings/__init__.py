"""Settings: the typed, validated configuration every other package receives as an argument.

Owns the TOML loader, the environment overrides and one section model per daemon
(``model.py`` assembles them); ``doc.py`` generates ``etc/skyline.conf`` and
``docs/configuration.md`` from the models.

May import: nothing else from ``skyline``, with one exception: the extension points
that declare their own settings are discovered by package name with ``importlib``
(``extensions.py``): the alert channels of ``skyline.alerting.channels`` make the
``[alerters.<channel>]`` tables and the channel names rules accept, and horizon's
protocols of ``skyline.ingest.horizon.protocols`` make its ``[horizon]`` port keys.
Those modules import only ``skyline.settings.base`` from here.  ``model.rebuild()``
builds the models again after a registry changed (tests).
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
