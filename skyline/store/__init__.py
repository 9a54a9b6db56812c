"""The live store: time series in Redis, their keys, rollups and the connection.

Owns every Redis key template (``keys.py``), the series encoding (``codec.py``) and
its compressed sealed blocks (``sealed.py``),
reading and appending series (``timeseries.py``), the raw RESP fast path
(``raw.py``), the rollups mirage and ionosphere read (``rollups.py``), the
connection, embedded, remote or a Redis Cluster (``connection.py``), what a cluster
needs beyond redis-py's cluster client (``cluster.py``: per-node routing of the raw
payloads and multi-key reads, scripts as EVAL), the allocator tuning for
reading series (``memory.py``), and the alert graphs shared by link
(``graph_images.py``).  What a stored datapoint may be - its validation
(``datapoint.py``) and the skip lists of metric names (``name_filter.py``) - is
here because the store checks every point it appends and every layer above reads it.

May import: ``skyline.settings``.
"""
