"""Horizon: Graphite line, pickle and UDP ingest into the time-series store.

Each wire protocol is one module of ``protocols/`` that registers itself (its parser,
its asyncio protocol, its ``[horizon]`` port key); ``listeners.py`` binds them all.
"""
