"""The vista daemon: pulls every ``[[vista]]`` source on its own schedule.

Each source runs in a worker thread of its own (a pool as large as the sources),
so a slow or hung source never delays another.  Every second ``run_once`` starts
the sources that are due and settles the ones that finished:

- a success resets the source's failures and schedules it ``interval`` later;
- a failure (``SourceError``, an SQL or HTTP error, anything raised) is counted by
  reason, kept as the source's last error, and retried with backoff (``status.backoff``);
- a source still running ``timeout`` + ``HANG_GRACE`` seconds after it started is
  failed as hung (its thread is left to end; its result is then dropped);
- after ``failing_after`` consecutive failures the source is raised once as a thunder
  event ``skyline.thunder.vista.<name>.failing`` through the alert pipeline.

A source whose settings are invalid (unknown kind, bad options, a variable not set)
fails like any other, with reason ``config``: the others run.  The sources' state is
published to ``vista:status`` for the Status page and ``/api/v1/status``.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from skyline.events.anomaly import AnomalyEvent
from skyline.events.routing import Heartbeats, forward
from skyline.ingest.vista import status
from skyline.ingest.vista.pull import PullResult, pull
from skyline.ingest.vista.sources import SOURCES, Source, SourceError, build
from skyline.runtime.daemon import OUTAGES, Daemon
from skyline.settings.vista import VistaSource
from skyline.store.labels import LabelIndex

HANG_GRACE = 5.0
FAILING_PREFIX = "skyline.thunder.vista."


class Vista(Daemon):
    name = "vista"
    interval = 1.0

    def setup(self) -> None:
        SOURCES.load()
        self.configs: dict[str, VistaSource] = {cfg.name: cfg for cfg in self.settings.vista}
        self.sources: dict[str, Source | None] = {}
        self.states = {
            cfg.name: status.SourceState(cfg.name, cfg.kind) for cfg in self.settings.vista
        }
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.configs)), thread_name_prefix="vista"
        )
        self.running: dict[str, tuple[Future[PullResult], float]] = {}
        # one label index per source: each is used by one pull thread at a time
        self.label_indexes = {name: LabelIndex(self.redis, self.keys) for name in self.configs}
        self.log.info("pulling %d sources: %s", len(self.configs), ", ".join(self.configs))

    def run_once(self) -> None:
        mono = time.monotonic()
        self._settle(mono)
        for name, state in self.states.items():
            if name not in self.running and mono >= state.next_due:
                self.running[name] = (self.pool.submit(self._pull, name), mono)
        status.publish(self.redis, self.keys, list(self.states.values()))
        self.counters.gauge("sources", len(self.states))
        self.counters.gauge("sources_failing", sum(1 for s in self.states.values() if s.failures))

    def _source(self, name: str) -> Source:
        source = self.sources.get(name)
        if source is None:
            source = self.sources[name] = build(self.configs[name])
        return source

    def _pull(self, name: str) -> PullResult:
        return pull(self._source(name), self.store, self.redis, self.settings, self.clock(),
                    index=self.label_indexes[name])  # fmt: skip

    def _settle(self, mono: float) -> None:
        for name, (future, started) in list(self.running.items()):
            cfg, state = self.configs[name], self.states[name]
            if not future.done():
                if mono - started > cfg.timeout + HANG_GRACE and not getattr(future, "hung", False):
                    future.hung = True  # type: ignore[attr-defined]
                    self._failed(state, cfg, "timeout", f"still running after {cfg.timeout:g}s")
                continue
            del self.running[name]
            if getattr(future, "hung", False):
                continue  # already failed as hung: its late result is dropped
            try:
                result = future.result()
            except SourceError as exc:
                self._failed(state, cfg, exc.reason, str(exc))
            except OUTAGES as exc:
                self._failed(state, cfg, "unreachable", _one_line(exc))
            except Exception as exc:  # any bug of one source must not stop the others
                self.log.exception("source %s: pull failed", name)
                self._failed(state, cfg, "error", f"{type(exc).__name__}: {_one_line(exc)}")
            else:
                self._succeeded(state, cfg, result)

    def _succeeded(self, state: status.SourceState, cfg: VistaSource, r: PullResult) -> None:
        d = r.delivered
        state.succeeded(d.live + d.rolled, r.metrics, self.clock())
        state.next_due = time.monotonic() + cfg.interval
        self.counters.inc("pulls")
        self.counters.inc("points", d.live + d.rolled)
        self.counters.inc(f"source.{cfg.name}.points", d.live + d.rolled)
        for reason, n in d.rejected.items():
            self.counters.inc(f"rejected.{reason}", n)
        self.log.debug("source %s: %d fetched, %d new, %d stored live, %d rolled up",
                       cfg.name, r.fetched, r.new, d.live, d.rolled)  # fmt: skip

    def _failed(self, state: status.SourceState, cfg: VistaSource, reason: str, msg: str) -> None:
        state.failed(reason, msg, self.clock())
        delay = status.backoff(cfg.interval, state.failures)
        state.next_due = time.monotonic() + delay
        self.counters.inc("errors")
        self.counters.inc(f"errors.{reason}")
        self.counters.inc(f"source.{cfg.name}.errors")
        self.log.warning("source %s (%s) failed %d time(s): %s: %s; next try in %.0fs",
                         cfg.name, cfg.kind, state.failures, reason, msg, delay)  # fmt: skip
        if reason == "config":
            self.sources.pop(cfg.name, None)
        if state.failures >= cfg.failing_after and not state.raised:
            state.raised = True
            self.raise_failing(cfg, state)

    def raise_failing(self, cfg: VistaSource, state: status.SourceState) -> None:
        now = self.clock()
        event = AnomalyEvent(
            metric=f"{FAILING_PREFIX}{cfg.name}.failing",
            timestamp=int(now),
            value=float(state.failures),
            source="thunder",
            algorithms_run=("vista_pull",),
            triggered=("vista_pull",),
            full_duration=int(cfg.interval),
            detected_at=now,
            host=self.settings.host_name,
        )
        pipe = self.redis.pipeline(transaction=False)
        forward(pipe, self.keys, self.settings, event, Heartbeats(self.redis, self.keys))
        pipe.execute()
        self.counters.inc("failing_events")

    def flush(self) -> None:
        if not hasattr(self, "pool"):
            return
        self.pool.shutdown(wait=False, cancel_futures=True)
        for source in self.sources.values():
            if source is not None:
                source.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
