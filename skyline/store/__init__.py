"""The live store: time series in Redis, their keys, rollups and the connection.

Owns every Redis key template (``keys.py``), the series encoding (``codec.py``),
reading and appending series (``timeseries.py``), the raw RESP fast path
(``raw.py``), the rollups mirage and ionosphere read (``rollups.py``) and the
connection, embedded or remote (``connection.py``).

May import: ``skyline.settings``.
"""
