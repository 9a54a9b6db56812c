"""Settings: the typed, validated configuration every other package receives as an argument.

Owns the TOML loader, the environment overrides and one section model per daemon
(``model.py`` assembles them); ``doc.py`` generates ``etc/skyline.conf`` and
``docs/configuration.md`` from the models.

May import: nothing else from ``skyline``.
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
