"""numba's ``njit`` as Skyline's compiled loops use it: cached on disk where it can be.

``jit`` compiles a function on its first call (``nogil``; numpy's error model, so a
division by zero gives inf or NaN as in numpy, not an exception) and caches the
machine code on disk: in ``__pycache__`` beside the module, or in ``NUMBA_CACHE_DIR``,
or the user's cache directory, the first of them numba can write to.  A cached
function loads in well under a second; compiling the classic kernels takes about
five.  When numba can write to none of them (a read-only install whose user has no
writable home: set ``NUMBA_CACHE_DIR``, as the shipped systemd unit does), numba
refuses ``cache=True`` when the function is defined, which would stop the import;
``jit`` then compiles without the disk cache, in every process, and names the
function in ``UNCACHED``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

__all__ = ["UNCACHED", "jit"]

F = TypeVar("F", bound=Callable[..., Any])
UNCACHED: list[str] = []  # functions compiled without the disk cache (no writable place)


def jit(fn: F) -> F:
    """``fn`` compiled by numba on first call, cached on disk when numba can."""
    try:
        return cast(F, njit(cache=True, nogil=True, error_model="numpy")(fn))
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        if "no locator" not in str(exc):
            raise
        UNCACHED.append(f"{fn.__module__}.{fn.__qualname__}")
        return cast(F, njit(nogil=True, error_model="numpy")(fn))
