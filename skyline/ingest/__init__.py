"""Getting metrics in: horizon (Graphite pickle/line, UDP) and flux (HTTP, StatsD, Prometheus, Influx).

Every path validates a datapoint with ``skyline.store.datapoint`` and applies the
skip lists of ``skyline.store.name_filter``; everything received ends in the store
through ``skyline.store``.  Horizon also decides which metrics keep rollups
(``horizon/rollup_scope.py``).

Inside: ``flux`` and ``horizon`` do not import each other.

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``, ``skyline.runtime``,
``skyline.events``.
"""
