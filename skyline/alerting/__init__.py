"""Alerting: deliver alerts on Slack, PagerDuty, email, webhooks and syslog; watch Skyline's own health.

Owns the alerters daemon (``agent.py``): its delivery with retries
(``delivery.py``, ``retry.py``, ``pending.py``), its dedupe key (``dedupe.py``),
the boundary channel limits (``rate_limits.py``), mutes and the alert log, the
channels (``channels/``: one self-registering module per channel, with its settings
table), a test alert sent on demand (``sample_alert.py``), and ``thunder``, which turns a daemon's missing heartbeat into an alert.

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``, ``skyline.runtime``,
``skyline.events``.
"""
