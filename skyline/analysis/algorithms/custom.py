"""Custom algorithms: user Python functions run beside the three-sigma ensemble.

Configured by ``[[custom_algorithms]]`` tables (``skyline.settings.algorithms``), as
Skyline's CUSTOM_ALGORITHMS.

Function contract
-----------------
The file named by ``source`` defines (at module level)::

    def my_algorithm(timestamps: np.ndarray, values: np.ndarray,
                     parameters: dict) -> tuple[bool | None, float]:
        ...
        return anomalous, score

``timestamps`` (int64 epoch seconds, strictly increasing) and ``values`` (float64,
finite) are the prepared series, read-only; the newest point is the one judged.
``parameters`` is a copy of the table's ``parameters``.  Return ``True``
(anomalous), ``False`` or ``None`` (cannot judge) and a finite score (anything else
counts as an error).  The file is imported once when the runner starts.

Isolation and time limits
-------------------------
Functions run in one worker process per runner (``custom_worker``), never in the
analyzer's process: each call is stopped at ``max_execution_time`` by SIGALRM in
the worker's main thread, and a worker that does not answer within
``max_execution_time + HARD_KILL_GRACE`` (code stuck in C, a function swallowing
every exception, a crash) is killed and restarted.  This works whichever thread
the caller is in.  A timeout or an error is counted (``timeouts.<name>``,
``errors.<name>``), is a None vote, and never stops the caller.  After
``MAX_CONSECUTIVE_TIMEOUTS`` timeouts in a row, or a kill, an algorithm is
suspended for ``SUSPEND_SECONDS`` (``suspended.<name>``): a hung algorithm costs a
few multiples of its limit per suspension, not its limit on every metric.

Consensus (``run_many_with_custom``)
------------------------------------
Skip checks first (a skipped series runs nothing).  Then the algorithms that
apply to the metric (``use_with`` and ``namespaces``) run in order: those with
``run_before_3sigma``, the three-sigma ensemble (without early exit, since later
votes can still change the outcome), then the others; one with
``run_only_if_consensus`` runs only when the votes before it already reach
consensus, and is left out of the count otherwise.  Every custom algorithm that
ran (timeouts and errors too, as None) votes like a three-sigma algorithm:
``decide(votes, n_ran, consensus, mode)``.  A ``consensus = 1`` algorithm that
triggers makes the metric anomalous on its own.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from skyline.analysis.algorithms import custom_worker as cw
from skyline.analysis.algorithms.batch import run_ensemble_many
from skyline.analysis.algorithms.classic import ALGORITHMS
from skyline.analysis.algorithms.ensemble import Verdict, decide
from skyline.analysis.algorithms.options import EnsembleOptions
from skyline.events.rules import matches
from skyline.settings.algorithms import CustomAlgorithm
from skyline.store.timeseries import Series

__all__ = [
    "CallResult",
    "CustomAlgorithmError",
    "CustomRunner",
    "run_many_with_custom",
    "run_with_custom",
]

HARD_KILL_GRACE = 1.0  # s beyond max_execution_time before the worker is killed
LOAD_TIMEOUT = 30.0  # s to import every file at start
SUSPEND_SECONDS = 60.0
CHUNK = 256  # series per message to the worker
APPLICABLE_CACHE = 100_000
_COUNTER = {"timeout": "timeouts", "error": "errors", "skipped": "skipped"}


class CustomAlgorithmError(RuntimeError):
    """A custom algorithm that cannot be used; the message names the table and file."""


@dataclass(frozen=True)
class CallResult:
    """One call: ``status`` ok | error | timeout | skipped (skipped = did not run)."""

    status: str
    anomalous: bool | None = None
    score: float = 0.0
    elapsed: float = 0.0
    message: str = ""


def _where(i: int, c: CustomAlgorithm) -> str:
    return f"[[custom_algorithms]] #{i + 1} (name {c.name!r})"


def _check_config(customs: Sequence[CustomAlgorithm]) -> None:
    seen: set[str] = set()
    for i, c in enumerate(customs):
        if c.name in ALGORITHMS or c.name in seen:
            what = "a three-sigma algorithm" if c.name in ALGORITHMS else "used by an earlier table"
            raise CustomAlgorithmError(f"{_where(i, c)}: the name is {what}; rename it")
        seen.add(c.name)
        if not Path(c.source).is_file():
            raise CustomAlgorithmError(
                f"{_where(i, c)}: source file {c.source} not found; fix source"
            )


class CustomRunner:
    """The custom algorithms of one application (``analyzer``, ``mirage``,
    ``crucible``), loaded once into a worker process.  Not thread-safe: one caller."""

    def __init__(self, customs: Sequence[CustomAlgorithm], app: str) -> None:
        self.customs = tuple(c for c in customs if app in c.use_with)
        self.app = app
        self.counts: Counter[str] = Counter()
        self._suspended: dict[str, float] = {}
        self._applicable: dict[str, tuple[CustomAlgorithm, ...]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        _check_config(self.customs)
        if self.customs:
            self._start()

    def __bool__(self) -> bool:
        return bool(self.customs)

    def __enter__(self) -> CustomRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # worker lifecycle ---------------------------------------------------------------
    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", cw.BOOT, cw.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        specs = [(c.name, str(Path(c.source).resolve()), c.function_name) for c in self.customs]
        try:
            self._send(("load", specs))
            reply = self._receive(LOAD_TIMEOUT)
        except (OSError, EOFError, TimeoutError) as exc:
            self._kill()
            raise CustomAlgorithmError(
                f"[[custom_algorithms]]: loading {', '.join(c.source for c in self.customs)} "
                f"failed ({type(exc).__name__}: {exc or 'no answer in time'}); a file must not "
                "block or exit when imported"
            ) from None
        for i, c in enumerate(self.customs):
            if reply[1].get(c.name):
                self._kill()
                raise CustomAlgorithmError(
                    f"{_where(i, c)}: cannot load {c.function_name!r} from {c.source}: "
                    f"{reply[1][c.name]}"
                )

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def _restart(self) -> None:
        self._kill()
        self.counts["worker_restarts"] += 1
        self._start()

    def close(self) -> None:
        """Stop the worker (it also exits by itself when the caller's process ends)."""
        if self._proc is not None:
            try:
                self._send(("quit",))
                self._proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()

    def _send(self, obj: Any) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        cw.write_frame(self._proc.stdin, obj)

    def _receive(self, timeout: float) -> Any:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        head = self._read_exact(fd, cw.HEADER.size, deadline)
        (size,) = cw.HEADER.unpack(head)
        return cw.pickle.loads(self._read_exact(fd, size, deadline))

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    # running ------------------------------------------------------------------------
    def applicable(self, metric: str | None) -> tuple[CustomAlgorithm, ...]:
        """The algorithms that run on ``metric`` (None: no name, so all of them)."""
        if metric is None:
            return self.customs
        found = self._applicable.get(metric)
        if found is None:
            if len(self._applicable) >= APPLICABLE_CACHE:
                self._applicable.clear()
            found = tuple(c for c in self.customs
                          if not c.namespaces or any(matches(p, metric) for p in c.namespaces))  # fmt: skip
            self._applicable[metric] = found
        return found

    def ordered(self) -> list[CustomAlgorithm]:
        """Run order: those that run before the three-sigma ensemble, then the rest."""
        return [c for c in self.customs if c.run_before_3sigma] + [
            c for c in self.customs if not c.run_before_3sigma
        ]

    def run(self, custom: CustomAlgorithm, series: Sequence[Series]) -> list[CallResult]:
        """Call ``custom`` on each series; never raises for what the function does."""
        name = custom.name
        until = self._suspended.get(name, 0.0)
        if until > time.monotonic():
            self.counts[f"suspended.{name}"] += len(series)
            return [CallResult("skipped", message="suspended")] * len(series)
        out: list[CallResult] = []
        for start in range(0, len(series), CHUNK):
            out += self._run_chunk(custom, series[start : start + CHUNK])
        for r in out:
            if r.status != "skipped":
                self.counts[f"calls.{name}"] += 1
            if r.status != "ok":
                self.counts[f"{_COUNTER[r.status]}.{name}"] += 1
        if any(r.message in ("too many timeouts", "killed") for r in out):
            self._suspended[name] = time.monotonic() + SUSPEND_SECONDS
        return out

    def _run_chunk(self, custom: CustomAlgorithm, chunk: Sequence[Series]) -> list[CallResult]:
        if self._proc is None or self._proc.poll() is not None:
            self._restart()
        calls = [(np.asarray(s.timestamps, np.int64), np.asarray(s.values, np.float64))
                 for s in chunk]  # fmt: skip
        wait = custom.max_execution_time + HARD_KILL_GRACE
        out: list[CallResult] = []
        try:
            self._send(("run", custom.name, custom.max_execution_time, custom.parameters, calls))
            for _ in chunk:
                out.append(CallResult(*self._receive(wait)))
        except (OSError, EOFError, TimeoutError) as exc:
            status = "timeout" if isinstance(exc, TimeoutError) else "error"
            out.append(CallResult(status, message="killed"))
            out += [CallResult("skipped", message="killed")] * (len(chunk) - len(out))
            self._restart()
        return out

    def take_counts(self) -> dict[str, int]:
        """Counts since the last call (then reset): calls/timeouts/errors/skipped per
        algorithm, worker_restarts."""
        out, self.counts = dict(self.counts), Counter()
        return out


# Consensus -------------------------------------------------------------------------
def run_many_with_custom(
    series: Mapping[str, Series],
    *,
    now: float,
    runner: CustomRunner | None,
    use_names: bool = True,
    options: EnsembleOptions | None = None,
    **changes: Any,
) -> dict[str, Verdict]:
    """Verdicts of the ensemble plus the custom algorithms that apply to each metric.

    ``options`` and ``changes`` are those of ``run_ensemble``.  Metrics that no custom algorithm
    applies to take the plain (early-exit, batched) path.  ``use_names=False`` runs
    every algorithm of the runner on every series (crucible on a file).
    """
    opts = EnsembleOptions.of(options, **changes)
    names = list(series)

    def applicable(m: str) -> tuple[CustomAlgorithm, ...]:
        return runner.applicable(m if use_names else None) if runner else ()

    plain = [m for m in names if not applicable(m)]
    custom = [m for m in names if applicable(m)]
    out = dict(zip(plain, run_ensemble_many([series[m] for m in plain], now=now, options=opts),
                   strict=True))  # fmt: skip
    if custom:
        assert runner is not None
        base = run_ensemble_many([series[m] for m in custom], now=now,
                                 options=replace(opts, early_exit=False))  # fmt: skip
        mode, consensus = opts.mode, opts.consensus
        state = {m: _State.of(v) for m, v in zip(custom, base, strict=True) if v.skip is None}
        out.update({m: v for m, v in zip(custom, base, strict=True) if v.skip is not None})
        for c in runner.ordered():
            todo = [m for m in state if c in applicable(m)]
            if c.run_only_if_consensus:
                todo = [m for m in todo if state[m].decision(consensus, mode)]
            results = runner.run(c, [series[m] for m in todo]) if todo else []
            for m, r in zip(todo, results, strict=True):
                state[m].add(c, r)
        for m, st in state.items():
            out[m] = st.verdict(consensus, mode)
    return {m: out[m] for m in names}


def run_with_custom(
    series: Series, *, now: float, runner: CustomRunner | None, metric: str | None = None,
    options: EnsembleOptions | None = None, **changes: Any,
) -> Verdict:  # fmt: skip
    """``run_many_with_custom`` for one series; ``metric`` None runs every algorithm
    of the runner (no namespace to match)."""
    key = metric if metric is not None else ""
    return run_many_with_custom(
        {key: series}, now=now, runner=runner, use_names=metric is not None,
        options=options, **changes,
    )[key]  # fmt: skip


@dataclass
class _State:
    """The votes of one metric while its custom algorithms run."""

    base: Verdict
    before: dict[str, tuple[bool | None, float]]
    after: dict[str, tuple[bool | None, float]]
    alone: bool = False  # a consensus-1 algorithm triggered

    @classmethod
    def of(cls, verdict: Verdict) -> _State:
        return cls(verdict, {}, {})

    def add(self, c: CustomAlgorithm, r: CallResult) -> None:
        if r.status == "skipped":
            return
        (self.before if c.run_before_3sigma else self.after)[c.name] = (r.anomalous, r.score)
        self.alone |= c.consensus == 1 and r.anomalous is True

    def votes(self) -> dict[str, bool | None]:
        return {**{k: v[0] for k, v in self.before.items()}, **self.base.votes,
                **{k: v[0] for k, v in self.after.items()}}  # fmt: skip

    def decision(self, consensus: int, mode: str) -> bool:
        votes = list(self.votes().values())
        return self.alone or decide(votes, len(votes), consensus, mode)

    def verdict(self, consensus: int, mode: str) -> Verdict:
        votes = self.votes()
        scores = {**{k: v[1] for k, v in self.before.items()}, **self.base.scores,
                  **{k: v[1] for k, v in self.after.items()}}  # fmt: skip
        return replace(
            self.base,
            anomalous=self.decision(consensus, mode),
            run=tuple(votes),
            triggered=tuple(n for n, v in votes.items() if v is True),
            scores=scores,
            votes=votes,
        )
