"""Crucible: deep analysis of one series on demand (``skyline crucible``).

Every algorithm (the three-sigma ensemble and the custom algorithms configured
``use_with = ["crucible"]``) is run on a CSV file or a stored metric; the result
is ``report.json`` and ``plot.png`` in an output directory (docs/crucible.md).

Crucible is a command, not a daemon, in this version: there is deliberately no
``skyline.crucible.__main__`` (``skyline start`` would otherwise treat it as one).
"""
