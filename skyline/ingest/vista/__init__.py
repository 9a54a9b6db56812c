"""vista: pulls metrics from Prometheus, VictoriaMetrics, Graphite, SQL and MLflow.

``agent.py`` is the daemon, ``pull.py`` one pass of one source, ``cursor.py`` where
each source stopped, ``route.py`` the route to the store (live window and rollups)
shared with backfill and CSV import, ``sources/`` the source kinds (an extension
point: one module per kind, registered in ``sources.SOURCES``).
"""
