"""What a piece of code keeps: tracemalloc restricted to the code under test.

A process-wide total counts whatever the pytest worker's other threads allocate at the
same time (a daemon a previous test left winding down, a compile): it once failed a test
with 10 MB that the code under test never allocated.  Here an allocation counts when a
frame of the named modules is on its stack (the innermost ``FRAMES``): what the code
under test creates, directly or through a library it calls (json, protobuf's C parser,
the store), and still holds, whoever holds it.  Threads of the code under test count
too (flux's StatsD thread keeps a 64 KB receive buffer); no other thread does.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

FRAMES = 8  # deep enough to reach the caller's frame from a library's allocation;
# each frame more makes every traced allocation slower (16 made the tests 5x slower)


def kept(action: Callable[[], object], *files: str) -> tuple[int, str]:
    """(bytes, where): what was allocated while ``action`` ran, with a frame of
    ``files`` (fnmatch patterns of source file names) on its stack, and is still
    alive after a collection; and the five largest allocation sites, for a failure
    message.  Memory freed during ``action`` that was allocated before it is not
    subtracted: this is what the action left behind, not a net change."""
    only = [tracemalloc.Filter(True, pattern, all_frames=True) for pattern in files]
    tracemalloc.start(FRAMES)
    try:
        action()
        gc.collect()
        left = tracemalloc.take_snapshot().filter_traces(only)
    finally:
        tracemalloc.stop()
    stats = left.statistics("traceback")
    where = "\n".join(
        f"{stat.traceback.format(limit=FRAMES)} {stat.size} bytes" for stat in stats[:5]
    )
    return sum(stat.size for stat in stats), where
