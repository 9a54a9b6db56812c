"""HTTP requests with a deadline enforced from outside the socket reads (mirage's
history fetch, vista's pull sources).

A socket timeout bounds each read, not a response: a server trickling bytes -- of
the headers, of a chunk-size line, of the body -- keeps every read under it for as
long as it likes.  So each request runs under a timer (``Watchdog.start``) that, at
its deadline, shuts the request's socket down (``socket.shutdown(SHUT_RDWR)``); the
blocked read returns at once and ``Watchdog.end`` says the request was cut
(``CutShort``).  ``Watchdog.stop`` (the daemon stopping) does the same to every
request under way and refuses new ones (``Stopping``), so no thread stays blocked on a
socket and the process can exit.

The socket is handed to the watchdog of the request under way on the thread
(``Watchdog.start`` to ``Watchdog.end``) by the connection classes a session from
``watched_session`` makes urllib3 use: as soon as a new connection has connected (and
again once TLS has wrapped it: the wrapper takes the socket over), and when a pooled
connection is taken for the request.  It is shut down at the operating system's level
(``socket.socket.shutdown``, under TLS too), so the blocked read returns at once.  The
connect itself is bounded by the connect timeout alone (the socket is not ours before
``connect`` returns).  Through a SOCKS proxy (``ALL_PROXY=socks5://...``) the socket
is not seen: callers keep a deadline check between the chunks they read as well.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.poolmanager

log = logging.getLogger(__name__)
_current = threading.local()  # .deadline: the request under way on this thread


class CutShort(RuntimeError):
    """A request cut at its deadline; the message says which."""


class Stopping(CutShort):
    """The owner is stopping: the request was cut short or not made."""


class Deadline:
    """One request: its sockets, and the timer that shuts them down at the deadline."""

    def __init__(self, seconds: float, what: str) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._done = False
        self.error: CutShort | None = None
        late = CutShort(f"no complete response within the {seconds:g} s deadline ({what})")
        self.timer = threading.Timer(seconds, self.cut, (late,))
        self.timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.error is not None:  # cut while it was connecting
                _shut(sock)

    def cut(self, error: CutShort) -> None:
        """Fail the request with ``error``: its sockets are shut down (under the lock, so
        never after ``finish``, when they may be closed and their numbers reused)."""
        with self._lock:
            if self._done or self.error is not None:
                return
            self.error = error
            for sock in self._socks:
                _shut(sock)

    def finish(self) -> CutShort | None:
        """The request is over (call before its sockets close); the error if it was cut."""
        self.timer.cancel()
        with self._lock:
            self._done = True
            return self.error


def _shut(sock: socket.socket) -> None:
    try:  # the socket's own shutdown: an SSLSocket's would drop its TLS state first
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError as exc:  # already closed by urllib3 (a failed read): nothing to cut
        log.debug("watchdog: socket already closed (%s)", exc)


class Watchdog:
    """The requests under way, each under its deadline; ``stop`` cuts them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Deadline] = set()
        self.stopping = threading.Event()

    def start(self, seconds: float, what: str = "the request's timeout") -> Deadline:
        """The deadline of a request about to be made on this thread (``end`` it, before
        its sockets close); ``Stopping`` once ``stop`` was called."""
        with self._lock:
            if self.stopping.is_set():
                raise Stopping("stopping: not tried")
            deadline = Deadline(seconds, what)
            self._live.add(deadline)
        _current.deadline = deadline
        deadline.timer.start()
        return deadline

    def end(self, deadline: Deadline) -> CutShort | None:
        """The request is over; the ``CutShort`` (or ``Stopping``) if it was cut."""
        _current.deadline = None
        with self._lock:
            self._live.discard(deadline)
        return deadline.finish()

    def stop(self) -> int:
        """Cut every request under way and refuse new ones; returns how many were cut."""
        with self._lock:
            self.stopping.set()
            live = list(self._live)
        for deadline in live:
            deadline.cut(Stopping("stopping: cut short"))
        return len(live)


def _watched(sock: socket.socket) -> socket.socket:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)
    return sock


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())

    def connect(self) -> None:
        super().connect()
        if self.sock is not None:  # the TLS wrapper, which took the socket over
            _watched(self.sock)


def _pooled(conn: Any) -> Any:
    """A connection taken from the pool for a request: its socket, when it has one (a
    kept-alive connection), watched by the request's deadline."""
    if getattr(conn, "sock", None) is not None:
        _watched(conn.sock)
    return conn


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _pooled(super()._get_conn(timeout))


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _pooled(super()._get_conn(timeout))


def _guard(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """Watched connections for a direct or HTTP-proxy manager (SOCKS keeps its own)."""
    if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager


class _Adapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        _guard(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: object) -> urllib3.PoolManager:
        return _guard(super().proxy_manager_for(proxy, **kwargs))


def watched_session() -> requests.Session:
    """A session whose connections, new or kept alive, are handed to the deadline of
    the request under way on the thread."""
    session = requests.Session()
    adapter = _Adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# what a request's transport raises (those of requests are OSErrors)
TRANSPORT: tuple[type[BaseException], ...] = (
    OSError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
)


class Request:
    """The request made in an ``under_deadline`` block: set ``response`` to its response,
    which the block's end closes after the deadline has ended."""

    response: requests.Response | None = None


@contextmanager
def under_deadline(dog: Watchdog, seconds: float, what: str) -> Iterator[Request]:
    """Run the block as one request under ``dog``'s deadline.  On leaving it the
    deadline is ended before the response lets its connection go, and when the
    deadline or a stop cut the request, that ``CutShort`` (``Stopping``) is raised in
    place of whatever the block raised: its error is the cut's.  ``Stopping`` at once
    when ``dog`` has been stopped."""
    deadline = dog.start(seconds, what)
    request = Request()
    try:
        yield request
    finally:
        cut = dog.end(deadline)
        if request.response is not None:
            request.response.close()
        if cut is not None:
            raise cut from None  # noqa: B012 - replaces what a cut request raised
