"""Luminosity: correlates each anomaly with the other metrics at the same time."""
