"""Keep freed memory in the process instead of returning it to the OS after each burst.

The analyzer reads every series in MGET chunks of several MB; with glibc's defaults
each chunk's memory is handed back to the OS and faulted in again for the next one,
which costs about as much as reading and decoding the data (page faults: ~4 per
series in the client and 3-4 in Redis, ~2.5 us each here).  Raising the mmap and
trim thresholds roughly doubles read+decode throughput (docs/storage.md); the cost
is that a process keeps its peak heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 512 << 20

# The same for a child process (the embedded redis-server uses glibc malloc).
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
}


def keep_freed_memory() -> bool:
    """Apply the thresholds to this process; False where glibc's mallopt is missing."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.info("mallopt unavailable: memory is returned to the OS after each read burst")
    return ok
