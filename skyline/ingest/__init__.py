"""Getting metrics in: horizon (Graphite pickle/line, UDP) and flux (HTTP, StatsD, Prometheus, Influx).

Owns the validation of one datapoint shared by every ingest path
(``datapoint.py``) and the skip lists (``name_filter.py``).  Everything received
ends in the store through ``skyline.store``.

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``, ``skyline.runtime``,
``skyline.events``.
"""
