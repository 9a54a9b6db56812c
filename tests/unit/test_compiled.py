"""``skyline.compiled.jit``: numba's disk cache where numba can write, a working
function (compiled per process) where it cannot, never a failed import."""

from __future__ import annotations

import numba
import numpy as np
from numba.core import caching

from skyline import compiled

# numba's cache machinery (without the leading underscores in recent numba)
IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl
USER_DIR = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator


def twice(x):
    return 2 * x


def halve(x):
    return x / 0.0


def test_jit_compiles_without_the_disk_cache_when_numba_has_nowhere_to_write(monkeypatch):
    # forced: no cache locator accepts the file (as a read-only install with no home)
    monkeypatch.setattr(IMPL, "_locator_classes", [])
    before = len(compiled.UNCACHED)
    f = compiled.jit(twice)
    assert f(21) == 42
    assert compiled.UNCACHED[before:] == [f"{__name__}.twice"]


def test_jit_caches_on_disk_and_divides_as_numpy_does(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))  # NUMBA_CACHE_DIR
    monkeypatch.setattr(IMPL, "_locator_classes", [USER_DIR])
    before = len(compiled.UNCACHED)
    f = compiled.jit(halve)
    assert np.isinf(f(1.0)) and np.isnan(f(0.0))  # numpy's error model: no exception
    assert len(compiled.UNCACHED) == before
    assert list(tmp_path.rglob("*.nbi"))  # the index of the on-disk cache
