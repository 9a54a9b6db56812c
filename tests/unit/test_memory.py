"""The daemons' memory setting takes effect (glibc).

(That the embedded Redis gets it too cannot be read back: redis-server rewrites its
process title over /proc/<pid>/environ at start.)
"""

from __future__ import annotations

import platform

import pytest

from skyline.store.memory import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True
