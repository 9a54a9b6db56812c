"""Events between daemons: anomaly and verdict events, their streams, routing and alert rules.

Owns the event schema (``anomaly.py``), Redis Streams consumption (``streams.py``),
which stage an anomaly goes to next (``routing.py``), matching ``[[alerts]]``
rules (``rules.py``) and panorama, the daemon that records events in SQL.

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``, ``skyline.runtime``.
"""
