"""Boundary: absolute thresholds and drop-off rules for named metrics (docs/boundary.md)."""
