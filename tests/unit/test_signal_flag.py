"""SignalFlag: Event semantics, and a set from a signal handler never hangs the process.

The flood test is the regression test of a thunder that never stopped on SIGTERM:
``threading.Event.set`` in a handler that interrupted the main thread's own
``Event.wait`` blocks on the lock that thread holds.  With ``--event`` the same child
uses ``threading.Event`` and hangs or dies (checked here, so the test can fail)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from skyline.runtime.signal_flag import SignalFlag

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import signal, sys, threading
sys.path.insert(0, {root!r})
from skyline.runtime.signal_flag import SignalFlag
make = threading.Event if sys.argv[1] == "event" else SignalFlag
flag, stop = make(), make()
hits = 0
def on_usr1(*_):
    global hits
    hits += 1
    flag.set()
    flag.clear()
signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print("ready", flush=True)
while not stop.is_set():  # the daemon loop: nearly all its time is in wait()
    flag.wait(0)
    stop.wait(0)
print("stopped", hits, flush=True)
"""


def flood(kind: str, signals: int = 1500) -> tuple[int | None, str]:
    """Run the child, send it ``signals`` SIGUSR1 then SIGTERM; its exit status (None:
    it hung) and output."""
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT)), kind],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for _ in range(signals):
            if child.poll() is not None:
                break
            os.kill(child.pid, signal.SIGUSR1)
            time.sleep(0.001)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            return child.wait(10), child.stdout.read()
        except subprocess.TimeoutExpired:
            return None, ""
    finally:
        child.kill()
        child.wait()


def test_a_flood_of_signals_then_sigterm_stops_the_loop_cleanly():
    for _ in range(2):
        code, out = flood("flag")
        assert code == 0 and out.startswith("stopped "), (code, out)
        assert int(out.split()[1]) > 100  # the handler really ran, many times


def test_the_same_flood_breaks_threading_event():
    """Why SignalFlag exists: the Event child hangs or dies within the flood."""
    results = [flood("event") for _ in range(2)]
    assert any(code != 0 or not out.startswith("stopped") for code, out in results), results


def test_event_semantics():
    flag = SignalFlag()
    assert not flag.is_set() and flag.wait(0) is False
    t0 = time.monotonic()
    assert flag.wait(0.05) is False
    assert time.monotonic() - t0 >= 0.04  # it slept, it did not spin out at once
    flag.set()
    flag.set()  # twice: still one flag
    assert flag.is_set() and flag.wait(0) is True and flag.wait(None) is True
    flag.clear()
    assert not flag.is_set() and flag.wait(0) is False  # the pipe was drained too
    for _ in range(100_000):  # more sets than the pipe holds: set never blocks
        flag.set()
    flag.clear()
    assert flag.wait(0) is False
    flag.close()
    flag.close()  # closing twice is harmless


def test_a_set_from_another_thread_wakes_a_waiter_at_once():
    flag = SignalFlag()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(flag.wait(30)))
    waiter.start()
    time.sleep(0.05)
    flag.set()
    waiter.join(10)
    assert not waiter.is_alive() and woke == [True]


@pytest.mark.parametrize("delay", [0.0, 0.02])
def test_a_signal_during_wait_wakes_it(delay):
    flag = SignalFlag()
    previous = signal.signal(signal.SIGUSR2, lambda *_: flag.set())
    try:
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGUSR2))
        timer.start()
        assert flag.wait(30) is True
        timer.join()
    finally:
        signal.signal(signal.SIGUSR2, previous)
