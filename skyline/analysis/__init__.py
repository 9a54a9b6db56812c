"""Deciding what is anomalous: the algorithms and the daemons that run them.

``algorithms`` holds the detectors (the streaming default and the classic
ensemble); ``analyzer`` judges every metric, ``mirage`` confirms over a longer
window, ``boundary`` checks hard limits, ``ionosphere`` matches trained profiles,
``luminosity`` correlates, ``crucible`` reports on one series and ``nab`` scores
the detector on the Numenta Anomaly Benchmark through the analyzer's own code.

Inside: every folder may import ``skyline.analysis.algorithms``; the daemons' folders
do not import each other (what two of them share belongs in ``algorithms`` or in a
lower layer).

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``, ``skyline.runtime``,
``skyline.events``.
"""
