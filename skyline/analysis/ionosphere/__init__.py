"""Ionosphere: features profiles of what is NOT anomalous, matching, caching, learning."""
