"""One history fetch over HTTP, its deadline enforced from outside the socket reads
(``skyline.runtime.http_deadline``): each try is cut ``connect + read timeout`` after
it began, and ``Watchdog.stop`` (mirage stopping) cuts every try under way and refuses
new tries and retries: ``Stopped``.  Each try has its own ``requests`` session, so its
socket is always a new one, under the try's deadline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import requests

from skyline.runtime.http_deadline import (
    TRANSPORT,
    CutShort,
    Stopping,
    Watchdog,
    under_deadline,
    watched_session,
)
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


def _get(url: str, params: dict[str, str], opts: RemoteOptions, dog: Watchdog) -> bytes:
    """One try, cut by ``dog`` ``connect_timeout + read_timeout`` after it began (or
    when it stops); each socket read also times out after ``read_timeout``.  A
    transport error is a ``FetchError``; whatever a cut try raised, its error is the
    cut's (the deadline, or stopping)."""
    seconds = opts.connect_timeout + opts.read_timeout
    try:
        with (
            watched_session() as session,
            under_deadline(dog, seconds, "remote_connect_timeout + remote_read_timeout") as request,
        ):  # the deadline ends before the session closes its sockets
            request.response = session.get(url, params=params, stream=True,
                                           timeout=(opts.connect_timeout, opts.read_timeout))  # fmt: skip
            return _read_body(request.response, opts)
    except CutShort as cut:
        raise _fetch_error(cut) from None
    except TRANSPORT as exc:
        raise FetchError(f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None


def _read_body(resp: requests.Response, opts: RemoteOptions) -> bytes:
    if resp.status_code != 200:
        raise FetchError(f"HTTP {resp.status_code}")
    body = bytearray()
    for chunk in resp.iter_content(65536):  # decoded (gzip), de-chunked
        body += chunk
        if len(body) > opts.max_bytes:
            raise FetchError(f"response larger than {opts.max_bytes} bytes")
    return bytes(body)
