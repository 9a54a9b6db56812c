"""One history fetch over HTTP, its deadline enforced from outside the socket reads.

A socket timeout bounds each read, not a response: a server trickling bytes -- of
the headers, of a chunk-size line, of the body -- keeps every read under it for as
long as it likes.  So each try runs under a timer (``Watchdog.start``) that, ``connect
+ read timeout`` after the try began, shuts the try's socket down
(``socket.shutdown(SHUT_RDWR)``); the blocked read returns at once and the try fails
with a ``FetchError`` that names the deadline.  ``Watchdog.stop`` (mirage stopping)
does the same to every try under way and refuses new tries and retries: ``Stopped``.

The socket is handed to the watchdog as soon as it has connected: each try has its
own ``requests`` session whose adapter makes urllib3 use connection classes that do
it (for the try under way on the thread).  The connect itself is bounded by the
connect timeout alone (the socket is not ours before ``connect`` returns).  Through
a SOCKS proxy (``ALL_PROXY=socks5://...``) the socket is not seen: each read is then
bounded by the read timeout only.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from dataclasses import dataclass, field

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.poolmanager

from skyline.settings.mirage import FETCH_BACKOFF

log = logging.getLogger("skyline.mirage")
_current = threading.local()  # .deadline: the try under way on this thread


class FetchError(RuntimeError):
    """A history fetch that gave nothing usable; the message says why (one line)."""


class Stopped(FetchError):
    """Mirage is stopping: the fetch was cut short or not tried (no fallback)."""


class _Deadline:
    """One try: its sockets, and the timer that shuts them down at the deadline."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._done = False
        self.error: FetchError | None = None
        late = FetchError(f"no complete response within the {seconds:g} s deadline "
                          "(remote_connect_timeout + remote_read_timeout)")  # fmt: skip
        self.timer = threading.Timer(seconds, self.cut, (late,))
        self.timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.error is not None:  # cut while it was connecting
                _shut(sock)

    def cut(self, error: FetchError) -> None:
        """Fail the try with ``error``: its sockets are shut down (under the lock, so
        never after ``finish``, when they may be closed and their numbers reused)."""
        with self._lock:
            if self._done or self.error is not None:
                return
            self.error = error
            for sock in self._socks:
                _shut(sock)

    def finish(self) -> FetchError | None:
        """The try is over (call before its sockets close); the error if it was cut."""
        self.timer.cancel()
        with self._lock:
            self._done = True
            return self.error


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed by urllib3 (a failed read): nothing to cut
        log.debug("watchdog: socket already closed (%s)", exc)


class Watchdog:
    """The tries under way, each under its deadline; ``stop`` cuts them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[_Deadline] = set()
        self.stopping = threading.Event()

    def start(self, seconds: float) -> _Deadline:
        with self._lock:
            if self.stopping.is_set():
                raise Stopped("stopping: not tried")
            deadline = _Deadline(seconds)
            self._live.add(deadline)
        deadline.timer.start()
        return deadline

    def end(self, deadline: _Deadline) -> FetchError | None:
        with self._lock:
            self._live.discard(deadline)
        return deadline.finish()

    def stop(self) -> int:
        """Cut every try under way and refuse new ones; returns how many were cut."""
        with self._lock:
            self.stopping.set()
            live = list(self._live)
        for deadline in live:
            deadline.cut(Stopped("stopping: fetch cut short"))
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


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


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


@dataclass(frozen=True)
class RemoteOptions:
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_bytes: int = 16 << 20
    attempts: int = 3
    backoff: float = FETCH_BACKOFF  # before try n (n = 1, 2...): n x this
    watchdog: Watchdog | None = field(default=None, compare=False)  # stop() cuts the fetches


def get_json(url: str, params: dict[str, str], opts: RemoteOptions) -> object:
    """GET and parse JSON, tried ``opts.attempts`` times; raises ``FetchError``, or
    ``Stopped`` once ``opts.watchdog`` is stopped (no more tries)."""
    last = "no attempt"
    dog = opts.watchdog or Watchdog()
    for attempt in range(opts.attempts):
        if attempt and dog.stopping.wait(opts.backoff * attempt):
            raise Stopped(f"{last} (stopping: no more tries)")
        try:
            return json.loads(_get(url, params, opts, dog))
        except Stopped:
            raise
        except FetchError as exc:
            last = str(exc)
        except ValueError as exc:  # not JSON (a 200 with HTML, truncated JSON)
            last = f"not JSON: {str(exc)[:80]}"
    raise FetchError(f"{last} (after {opts.attempts} tries)")


TRANSPORT = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)


def _get(url: str, params: dict[str, str], opts: RemoteOptions, dog: Watchdog) -> bytes:
    """One try, cut by ``dog`` ``connect_timeout + read_timeout`` after it began (or
    when it stops); each socket read also times out after ``read_timeout``.  A
    transport error (those of ``requests`` are OSErrors) is a ``FetchError``; whatever
    a cut try raised, its error is the cut's (the deadline, or stopping)."""
    deadline = dog.start(opts.connect_timeout + opts.read_timeout)
    _current.deadline = deadline
    failure: Exception | None = None
    body = b""
    with requests.Session() as session:
        adapter = _Adapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        resp = None
        try:
            resp = session.get(url, params=params, stream=True,
                               timeout=(opts.connect_timeout, opts.read_timeout))  # fmt: skip
            body = _read_body(resp, opts)
        except Exception as exc:  # noqa: BLE001 - re-raised below, or the cut's error instead
            failure = exc
        finally:
            _current.deadline = None
            cut = dog.end(deadline)  # before the sockets close
            if resp is not None:
                resp.close()
    if cut is not None:
        raise cut from None
    if isinstance(failure, TRANSPORT):
        raise FetchError(f"{type(failure).__name__}: {' '.join(str(failure).split())[:120]}")
    if failure is not None:
        raise failure  # a FetchError, or a bug: not a transport failure
    return body


def _read_body(resp: requests.Response, opts: RemoteOptions) -> bytes:
    if resp.status_code != 200:
        raise FetchError(f"HTTP {resp.status_code}")
    body = bytearray()
    for chunk in resp.iter_content(65536):  # decoded (gzip), de-chunked
        body += chunk
        if len(body) > opts.max_bytes:
            raise FetchError(f"response larger than {opts.max_bytes} bytes")
    return bytes(body)
