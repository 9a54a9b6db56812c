"""Mirage: analyzer anomalies re-judged over days of history (docs/mirage.md)."""
