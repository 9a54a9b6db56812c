"""Settings of mirage: confirmation of analyzer anomalies over a longer window, and the
down-sampled history (rollups) it reads."""

from __future__ import annotations

from skyline.settings_base import LoopSection


class MirageSection(LoopSection):
    """Confirmation of anomalies over a longer window."""
