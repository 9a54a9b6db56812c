"""The daemons' memory setting takes effect (glibc), and reaches the embedded Redis."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from skyline.memory import MALLOC_ENV, MMAP_THRESHOLD, TRIM_THRESHOLD, keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True


def test_embedded_redis_gets_the_same_thresholds(tmp_path):
    from skyline.redis_conn import EmbeddedRedis

    expected = {
        "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
    }
    assert expected == MALLOC_ENV
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    try:
        pid = int(server.pid_file.read_text())
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
            if "=" in item
        )
        assert environ.get("MALLOC_TRIM_THRESHOLD_") == str(TRIM_THRESHOLD)
    finally:
        server.stop()
