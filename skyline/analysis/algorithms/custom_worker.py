"""The worker process that runs custom algorithms (see ``skyline.analysis.algorithms.custom``).

Started by the parent as ``python -c BOOT <this file>``: the file is loaded by path so
that the worker imports only the standard library, numpy and the users' files (not
the whole algorithm package with scipy), which keeps a (re)start near 0.15 s.

Protocol on the worker's original stdin/stdout (user code that prints writes to
stderr instead): frames of a 4-byte big-endian length and a pickle.

- ``("load", [(name, source, function), ...])`` -> ``("loaded", {name: error or None})``
- ``("run", name, max_time, parameters, [(timestamps, values), ...])`` -> one
  ``(status, anomalous, score, elapsed, message)`` per series, in order, where status
  is ``ok``, ``error``, ``timeout`` or ``skipped`` (after ``MAX_CONSECUTIVE_TIMEOUTS``
  timeouts in a row the rest of the batch is skipped).
- ``("quit",)``

Each call runs under ``setitimer(ITIMER_REAL)``: SIGALRM raises ``CallTimeout`` (a
``BaseException``, so ``except Exception`` in user code does not swallow it) in the
worker's main thread, which stops sleeping and pure-Python loops at the limit.  A
function that blocks inside C code or swallows every exception is stopped by the
parent, which kills this process when a result is late.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
import signal
import struct
import time
from typing import IO, Any, BinaryIO

MAX_CONSECUTIVE_TIMEOUTS = 3
HEADER = struct.Struct(">I")

BOOT = (
    "import importlib.util,sys;"
    "s=importlib.util.spec_from_file_location('_skyline_custom_worker',sys.argv[1]);"
    "m=importlib.util.module_from_spec(s);s.loader.exec_module(m);m.main()"
)


class CallTimeout(BaseException):
    """Raised in a call that outlived its time limit."""


def write_frame(out: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(inp: BinaryIO) -> Any:
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        raise EOFError
    (size,) = HEADER.unpack(head)
    data = inp.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def load_function(name: str, source: str, function: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"skyline_custom_{name}", source)
    if spec is None or spec.loader is None:
        raise ImportError(f"{source} is not a Python source file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"{source} defines no function {function!r}")
    return fn


def check_result(result: Any) -> tuple[bool | None, float]:
    """The function's return value as (anomalous, score), or TypeError."""
    if not isinstance(result, tuple | list) or len(result) < 2:
        raise TypeError(f"returned {type(result).__name__}, expected (anomalous, score)")
    anomalous, score = result[0], result[1]
    if anomalous is not None:
        if type(anomalous).__name__ not in ("bool", "bool_"):
            raise TypeError(f"anomalous is {type(anomalous).__name__}, expected bool or None")
        anomalous = bool(anomalous)
    score = float(score) if score is not None else 0.0
    return anomalous, score if math.isfinite(score) else 0.0


def _on_alarm(signum: int, frame: Any) -> None:
    raise CallTimeout


def run_call(fn: Any, t: Any, v: Any, parameters: dict, max_time: float) -> tuple:
    t.flags.writeable = False
    v.flags.writeable = False
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, max_time)
        try:
            result = fn(t, v, dict(parameters))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        anomalous, score = check_result(result)
        return ("ok", anomalous, score, time.perf_counter() - start, "")
    except CallTimeout:
        return ("timeout", None, 0.0, time.perf_counter() - start, "time limit")
    except Exception as exc:  # noqa: BLE001 - a user function's error is reported, not raised
        message = f"{type(exc).__name__}: {exc}"[:300]
        return ("error", None, 0.0, time.perf_counter() - start, message)


def run_batch(out: BinaryIO, fn: Any, max_time: float, parameters: dict, calls: list) -> None:
    consecutive = 0
    for t, v in calls:
        if consecutive >= MAX_CONSECUTIVE_TIMEOUTS:
            write_frame(out, ("skipped", None, 0.0, 0.0, "too many timeouts"))
            continue
        try:
            reply = run_call(fn, t, v, parameters, max_time)
        except CallTimeout:  # the alarm fired between the call and its reply
            reply = ("timeout", None, 0.0, max_time, "time limit")
        consecutive = consecutive + 1 if reply[0] == "timeout" else 0
        write_frame(out, reply)


def main() -> None:
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # user prints go to stderr, never into the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    functions: dict[str, Any] = {}
    while True:
        try:
            msg = read_frame(inp)
        except EOFError:
            return
        if msg[0] == "quit":
            return
        if msg[0] == "load":
            errors: dict[str, str | None] = {}
            for name, source, function in msg[1]:
                try:
                    functions[name] = load_function(name, source, function)
                    errors[name] = None
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    errors[name] = f"{type(exc).__name__}: {exc}"[:500]
            write_frame(out, ("loaded", errors))
        elif msg[0] == "run":
            _, name, max_time, parameters, calls = msg
            run_batch(out, functions[name], max_time, parameters, calls)


if __name__ == "__main__":
    main()
