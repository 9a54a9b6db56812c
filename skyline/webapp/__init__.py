"""The web UI and REST API (Flask, served by gunicorn on port 1500).

Modules: ``app`` (factory, security headers, errors), ``auth`` (login, sessions,
API tokens, roles), ``csrf``, ``pages`` (Now, Anomalies, Anomaly, Metrics,
Status), ``admin_pages`` (Users, API tokens), ``audit`` (who changed what),
``alert_pages`` (Alerts, test alerts), ``api`` (/api/v1), ``openapi`` (its document),
``api_docs`` (/api/docs), ``formats`` (times and units), ``queries`` (the reads),
``users`` (passwords, tokens, first administrator), ``graph_range`` (graph time
ranges and markers), ``metric_names``/``metric_browser`` (the Metrics page's tree),
``ranking`` (the anomaly-rate ranking), ``grafana`` (/api/grafana), ``graph_images``
(/graphs/<token>.png: alert graphs by capability link, no login), ``self_metrics``
(the Prometheus exposition), ``server``/``agent``/``wsgi`` (the daemon and
gunicorn).  See docs/webapp.md.

May import: anything in ``skyline`` except ``skyline.cli``.
"""
