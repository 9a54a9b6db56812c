"""Running Skyline's processes: the daemon base class, start/stop, HTTP serving.

Owns the daemon loop with its heartbeat and exception policy (``daemon.py``), the
list of daemons and the module each runs (``daemons.py``), pid files and
start/stop/status (``control.py``), serving a WSGI app (``http_serving.py``) and
the allocator tuning (``memory.py``).

May import: ``skyline.settings``, ``skyline.store``.
"""
