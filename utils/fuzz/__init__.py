"""Fuzzing Skyline's inputs: hostile data on every protocol, with good points between.

``python -m utils.fuzz --per-protocol 20000`` starts a private Skyline (``stack``),
sends each protocol's hostile inputs drawn by hypothesis (``hostile``) with a good
point after every one (``protocols``), then checks that every good point was stored
and prints one JSON line: inputs, crashes (daemons that died, HTTP 5xx), good points
lost, and each daemon's peak memory.  A short run is part of ``make test``
(tests/integration/test_fuzz.py); the full run's figures are in docs/reliability.md.
"""
