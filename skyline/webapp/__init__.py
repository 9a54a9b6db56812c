"""The web UI and REST API (Flask, served by gunicorn on port 1500).

Modules: ``app`` (factory, security headers, errors), ``auth`` (login, sessions,
API tokens, roles), ``csrf``, ``pages`` (Now, Anomalies, Anomaly, Metrics,
Status), ``api`` (/api/v1), ``openapi`` (its document), ``queries`` (the reads),
``users`` (passwords, tokens, first administrator), ``graph_range`` (graph time
ranges and markers), ``metric_names``/``metric_browser`` (the Metrics page's tree),
``ranking`` (the anomaly-rate ranking), ``server``/``agent``/``wsgi`` (the daemon
and gunicorn).  See docs/webapp.md.

May import: anything in ``skyline`` except ``skyline.cli``.
"""
