"""Running Skyline's processes: the daemon base class, start/stop, HTTP serving.

Owns the daemon loop with its heartbeat and exception policy (``daemon.py``), the
list of daemons and the module each runs (``daemons.py``), pid files and
start/stop/status (``control.py``), serving a WSGI app (``http_serving.py``), the
SIGHUP reload (``reload.py``) and systemd notify/watchdog (``systemd.py``).
A daemon waits for its database and checks the schema at start, hence ``skyline.db``.

May import: ``skyline.settings``, ``skyline.store``, ``skyline.db``.
"""
