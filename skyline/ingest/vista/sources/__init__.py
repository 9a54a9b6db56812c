"""Pull sources of vista: one module per source kind, each registering itself.

A source kind is a class registered in ``SOURCES`` under its ``kind`` name; it is
built from its ``[[vista]]`` table (``VistaSource``) and its kind-specific
``options`` (validated by the class's ``Options`` model), and answers ``fetch(start,
end)`` with the series it finds in that window.  Adding a kind is adding one module
here (docs/extending.md, "Adding a pull source").

Every fetch is bounded: a deadline (``cfg.timeout``) and a size (``cfg.max_points``,
and for HTTP a byte limit derived from it).  An HTTP request's deadline is enforced
from outside its socket reads (``skyline.runtime.http_deadline``), so an upstream that
trickles its answer a byte at a time is cut at the deadline too, and ``close`` (vista
stopping) cuts the requests under way, so no pull thread keeps the process alive.  A
failure is raised as ``SourceError`` with a short ``reason`` (malformed, query,
timeout, too_large, unreachable) that vista counts and shows.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import requests
import urllib3
from pydantic import BaseModel, ConfigDict, ValidationError

from skyline.registry import Registry
from skyline.runtime.http_deadline import TRANSPORT, CutShort, Watchdog, under_deadline
from skyline.settings.vista import VistaSource

__all__ = [
    "SOURCES",
    "NoOptions",
    "PulledSeries",
    "Source",
    "SourceError",
    "build",
    "expand_env",
    "get_json",
    "safe_name",
]

BYTES_PER_POINT = 64  # HTTP response bytes allowed per point of max_points (JSON is verbose)
_UNSAFE = re.compile(r"[^A-Za-z0-9+\-%._/=:]")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SourceError(RuntimeError):
    """A fetch failed; ``reason`` is one of malformed, query, timeout, too_large,
    unreachable (or a kind's own word), the message says what and never holds secrets."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class PulledSeries:
    """One series of a fetch: the source's name for it, epoch seconds and values, and
    for a labelled series its label set as the source gave it (``__name__`` among
    them when it has one); ``name`` is then the flattened name (skyline.store.labels)."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    labels: dict[str, str] | None = None


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source:
    """Base of a source kind: subclass, register, implement ``fetch``."""

    kind: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    overlap: ClassVar[float] = 0.0  # seconds each window re-asks (servers that lag)

    def __init__(self, cfg: VistaSource, options: Any) -> None:
        self.cfg = cfg
        self.options = options
        self.watchdog = Watchdog()  # the deadlines of its HTTP requests (get_json)
        # what a fetch refused before it became series (a row without a name), by
        # reason: the pull counts it with the pass's rejects
        self.rejected: Counter[str] = Counter()

    def fetch(self, start: float, end: float) -> list[PulledSeries]:
        raise NotImplementedError

    def close(self) -> None:
        """Cut the HTTP requests under way and refuse new ones (vista calls it at stop);
        a kind that holds connections releases them too, and calls this."""
        self.watchdog.stop()

    # helpers for subclasses ---------------------------------------------------------
    def deadline(self) -> float:
        return time.monotonic() + self.cfg.timeout

    def check_size(self, n: int) -> None:
        if n > self.cfg.max_points:
            raise SourceError(
                "too_large",
                f"more than max_points = {self.cfg.max_points} points in one fetch; narrow "
                "the query, or raise max_points",
            )


SOURCES: Registry[type[Source]] = Registry("pull source", __name__)


def expand_env(text: str, env: dict[str, str] | None = None) -> str:
    """``${NAME}`` replaced by the environment variable NAME (missing: an error)."""
    env = dict(os.environ) if env is None else env

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in env:
            raise SourceError("config", f"environment variable {m.group(1)} is not set")
        return env[m.group(1)]

    return _ENV_REF.sub(one, text)


def build(cfg: VistaSource) -> Source:
    """The source of one ``[[vista]]`` table; ``SourceError('config', ...)`` when its kind
    is unknown or its options are invalid."""
    try:
        cls = SOURCES.get(cfg.kind)
    except KeyError as exc:
        raise SourceError("config", f"[[vista]] {cfg.name}: {exc}") from None
    try:
        options = cls.Options.model_validate(cfg.options)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SourceError(
            "config", f"[[vista]] {cfg.name}: options.{where}: {err['msg']}"
        ) from None
    return cls(cfg, options)


def safe_name(name: str) -> str:
    """A source's series name made a valid Skyline metric name (unsafe characters -> _)."""
    return _UNSAFE.sub("_", name)


def get_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    watchdog: Watchdog,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> Any:
    """One HTTP request answered with JSON, within ``timeout`` in all and ``max_bytes``
    of body; every failure is a ``SourceError``.  ``session`` must come from
    ``watched_session``: ``watchdog`` cuts the request at the deadline even while a
    read is blocked (checked between chunks too, for a socket it cannot see)."""
    ends = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        with under_deadline(watchdog, timeout, "the source's timeout") as request:
            request.response = resp = session.request(
                method, url, params=params, json=body, timeout=(min(timeout, 10.0), timeout),
                stream=True,
            )  # fmt: skip
            status, size = resp.status_code, 0
            for chunk in resp.iter_content(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(
                        "too_large", f"response larger than {max_bytes} bytes; narrow the "
                        "query or raise max_points",
                    )  # fmt: skip
                if time.monotonic() > ends:
                    raise SourceError("timeout", f"no complete answer within {timeout:g}s")
                chunks.append(chunk)
    except CutShort as cut:
        raise SourceError("timeout", str(cut)) from None
    except TRANSPORT as exc:
        raise _transport_error(exc, timeout) from None
    raw = b"".join(chunks)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        if status >= 400:
            raise SourceError(
                "query", f"HTTP {status}: {_short(raw.decode('utf-8', 'replace'))}"
            ) from None
        raise SourceError("malformed", f"HTTP {status}: response is not JSON") from None
    if status >= 400:
        detail = doc.get("error") or doc.get("message") if isinstance(doc, dict) else None
        raise SourceError("query", f"HTTP {status}: {_short(detail or doc)}")
    return doc


def _transport_error(exc: BaseException, timeout: float) -> SourceError:
    """A request's transport failure as a ``SourceError``: timeout or unreachable."""
    inner = exc.args[0] if exc.args else None  # requests wraps a timed-out body read
    if isinstance(exc, requests.Timeout) or isinstance(inner, urllib3.exceptions.ReadTimeoutError):
        return SourceError("timeout", f"no answer within {timeout:g}s")
    return SourceError("unreachable", f"{type(exc).__name__}: {_short(exc)}")


def max_bytes(cfg: VistaSource) -> int:
    return cfg.max_points * BYTES_PER_POINT + (1 << 20)


def number(value: Any) -> float:
    """A value of a response as a float (NaN when it is not one)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def _short(value: Any) -> str:
    return " ".join(str(value).split())[:300]
