"""A flag that a signal handler may set: the daemons' stop and reload requests.

``threading.Event.set`` takes the event's lock.  A signal handler runs in the main
thread, between two bytecodes of whatever it interrupted; if that was the main
thread's own ``Event.wait`` (where a daemon spends most of its time), the lock is
already held and the process hangs for ever in the handler (seen: a thunder that
never stopped on SIGTERM, in CI).  ``SignalFlag.set`` takes no lock: it sets a bool
and writes a byte to a pipe; ``wait`` sleeps in ``poll`` on that pipe, so a set from
a handler or from another thread wakes it at once.
"""

from __future__ import annotations

import os
import select


class SignalFlag:
    """``threading.Event``'s ``set``/``is_set``/``clear``/``wait``, safe to ``set``
    from a signal handler."""

    _read = _write = -1  # (no pipe yet)

    def __init__(self) -> None:
        self._flag = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._flag = True
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:  # the pipe is full: it is readable already
            pass

    def is_set(self) -> bool:
        return self._flag

    def clear(self) -> None:
        """Unset, and drain the pipe (a set racing this one stays set: the flag is
        cleared first, and ``wait`` looks at the flag before it sleeps)."""
        self._flag = False
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """True as soon as the flag is set, else False after ``timeout`` seconds
        (``None``: no limit)."""
        if self._flag:
            return True
        poller = select.poll()  # one per call: a poll object is not for two threads
        poller.register(self._read, select.POLLIN)
        poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))
        return self._flag

    def close(self) -> None:
        """Close the pipe (once; also when the flag is garbage-collected)."""
        if self._read < 0:
            return
        os.close(self._read)
        os.close(self._write)
        self._read = self._write = -1

    def __del__(self) -> None:
        self.close()
