"""Alerters: deliver alerts on Slack, PagerDuty, email, webhooks and syslog."""
