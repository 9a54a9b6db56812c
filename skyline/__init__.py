"""Skyline: real-time anomaly detection for operational metrics."""

__version__ = "0.1.0"
