"""One history fetch over HTTP, its deadline enforced from outside the socket reads
(``skyline.runtime.http_deadline``): each try is cut ``connect + read timeout`` after
it began, and ``Watchdog.stop`` (mirage stopping) cuts every try under way and refuses
new tries and retries: ``Stopped``.  Each try has its own ``requests`` session, so its
socket is always a new one, under the try's deadline.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field

import requests
import urllib3

from skyline.runtime.http_deadline import CutShort, Stopping, Watchdog, watched_session
from skyline.settings.mirage import FETCH_BACKOFF

__all__ = ["FetchError", "RemoteOptions", "Stopped", "Watchdog", "get_json"]


class FetchError(RuntimeError):
    """A history fetch that gave nothing usable; the message says why (one line)."""


class Stopped(FetchError):
    """Mirage is stopping: the fetch was cut short or not tried (no fallback)."""


def _fetch_error(cut: CutShort) -> FetchError:
    return Stopped(str(cut)) if isinstance(cut, Stopping) else FetchError(str(cut))


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
        except RecursionError:  # JSON nested deeper than Python's parser goes
            last = "not JSON: nested too deeply"
    raise FetchError(f"{last} (after {opts.attempts} tries)")


TRANSPORT = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)


def _get(url: str, params: dict[str, str], opts: RemoteOptions, dog: Watchdog) -> bytes:
    """One try, cut by ``dog`` ``connect_timeout + read_timeout`` after it began (or
    when it stops); each socket read also times out after ``read_timeout``.  A
    transport error (those of ``requests`` are OSErrors) is a ``FetchError``; whatever
    a cut try raised, its error is the cut's (the deadline, or stopping)."""
    try:
        deadline = dog.start(opts.connect_timeout + opts.read_timeout,
                             "remote_connect_timeout + remote_read_timeout")  # fmt: skip
    except Stopping as exc:
        raise Stopped(str(exc)) from None
    failure: Exception | None = None
    body = b""
    with watched_session() as session:
        resp: requests.Response | None = None
        try:
            resp = session.get(url, params=params, stream=True,
                               timeout=(opts.connect_timeout, opts.read_timeout))  # fmt: skip
            body = _read_body(resp, opts)
        except Exception as exc:  # noqa: BLE001 - re-raised below, or the cut's error instead
            failure = exc
        finally:
            cut = dog.end(deadline)  # before the sockets close
            if resp is not None:
                resp.close()
    if cut is not None:
        raise _fetch_error(cut) from None
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
