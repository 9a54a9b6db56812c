"""Settings of ionosphere: features profiles, motif matching and learning."""

from __future__ import annotations

from skyline.settings_base import LoopSection


class IonosphereSection(LoopSection):
    """Features profiles and motif matching."""
