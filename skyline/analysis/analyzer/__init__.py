"""Analyzer: the ensemble on every metric, on arrival of new data and in sweeps."""
