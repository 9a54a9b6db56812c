"""Events between daemons: anomaly and verdict events, their streams, routing and alert rules.

Owns the event schema (``anomaly.py``), Redis Streams consumption (``streams.py``)
and the base of every stream-consuming daemon (``stream_daemon.py``), which stage an
anomaly goes to next (``routing.py``), matching ``[[alerts]]`` rules (``rules.py``)
and ``[[boundary]]`` rules (``boundary_rules.py``, read by boundary and the
alerters), and panorama, the daemon that records events in SQL and reads the
verdict trail (``panorama/trail.py``).

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``, ``skyline.runtime``.
"""
