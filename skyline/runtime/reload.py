"""SIGHUP: reopen the log files and reload what can change while a daemon runs.

What is reloaded: the rule tables (``[[alerts]]``, ``[[boundary]]``,
``[[data_health]]``) and ``[skyline] log_level``.  Everything else (ports, URLs,
intervals, sizes) is fixed at start; a changed value is named in the log as needing
a restart.  A file that no longer validates is not applied: the daemon keeps the
settings it runs with and logs every problem.  Mutes need no reload: the alerters
read them from SQL every second.
"""

from __future__ import annotations

import logging
import logging.handlers

from skyline.settings import Settings, SettingsError, load_settings

RELOADABLE = ("alerts", "boundary", "data_health")

log = logging.getLogger("skyline.reload")


def reopen_logs() -> None:
    """Reopen log files that were moved or removed (logrotate without copytruncate)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.handlers.WatchedFileHandler):
            handler.reopenIfNeeded()


def reloaded(current: Settings) -> tuple[Settings, list[str]] | None:
    """The settings to run with after a SIGHUP, and the sections that changed but need a
    restart; None when the file does not validate (the current settings stay)."""
    try:
        new = load_settings()
    except SettingsError as exc:
        log.error("SIGHUP: the settings were not reloaded (the running ones stay):\n%s", exc)
        return None
    skyline = current.skyline.model_copy(update={"log_level": new.skyline.log_level})
    restart = [
        name
        for name in type(current).model_fields
        if name not in RELOADABLE and getattr(new, name) != getattr(current, name)
    ]
    if "skyline" in restart and new.skyline == skyline:
        restart.remove("skyline")  # only the log level changed, and it is applied
    update = {name: getattr(new, name) for name in RELOADABLE}
    return current.model_copy(update={**update, "skyline": skyline}), restart
