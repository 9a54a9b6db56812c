"""Horizon: Graphite line, pickle and UDP ingest into the time-series store."""
