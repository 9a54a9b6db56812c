"""What a piece of code keeps: tracemalloc restricted to the code under test.

A process-wide total counts whatever the pytest worker's other threads allocate at the
same time (a daemon a previous test left winding down, a compile): it once failed a test
with 10 MB that the code under test never allocated.  Counting only allocations made in
the named modules is exact for what they create and keep, whoever holds it.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def kept(action: Callable[[], object], *files: str) -> tuple[int, str]:
    """(bytes, where): what code in ``files`` (fnmatch patterns of source file names)
    allocated while ``action`` ran and still holds after a collection, and the five
    largest allocation sites, for a failure message."""
    only = [tracemalloc.Filter(True, pattern) for pattern in files]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(only)
        action()
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(only)
    finally:
        tracemalloc.stop()
    growth = after.compare_to(before, "traceback")
    where = "\n".join(f"{stat.traceback} {stat.size_diff:+d} bytes" for stat in growth[:5])
    return sum(stat.size_diff for stat in growth), where
