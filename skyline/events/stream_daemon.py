"""The base of the daemons whose work arrives on Redis Streams.

Panorama, the alerters, mirage, ionosphere and luminosity each consume one or more
streams through a consumer group (``skyline.events.streams``).  ``StreamDaemon``
holds what they share:

- no fixed cadence: ``run_once`` blocks on its streams for up to the section's
  ``interval`` seconds, so ``interval`` is 0 for the loop;
- the consumer (``self.consumer``): group ``name`` on ``streams()``, consumer
  ``<name>-<host>-<pid>``, entries left idle by a dead consumer claimed after the
  section's ``claim_idle`` seconds; the groups are created at start, after
  ``prepare`` (the subclass's own start-up: open SQL, build caches);
- the exception policy around reading and handling entries (``recovering``): an
  exception propagates to ``Daemon``'s policy (an outage backs off and retries, any
  other is logged as a bug and the loop carries on), after the consumer is told
  that its next read must start with its own pending entries, so nothing read
  but not acknowledged is skipped.  An entry is acknowledged (``consumer.ack``)
  only by the subclass, once its effect is durable; a malformed entry is dropped
  (``event_of``: counted, logged, acknowledged), since reading it again cannot help.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from contextlib import contextmanager
from typing import ClassVar, Protocol

from skyline.events.anomaly import AnomalyEvent
from skyline.events.streams import StreamConsumer, consumer_name
from skyline.runtime.daemon import Daemon


class StreamSection(Protocol):
    """The settings every stream daemon's section has."""

    claim_idle: int
    interval: float


class StreamDaemon(Daemon):
    """Subclass, set ``name``, implement ``streams``, ``run_once`` and optionally
    ``prepare`` (instead of ``setup``) and ``flush``."""

    read_count: ClassVar[int] = 100  # entries per read
    consumer: StreamConsumer  # set by ``setup``

    @property
    def interval(self) -> float:
        """No pause between passes: ``run_once`` blocks on the streams instead."""
        return 0.0

    @property
    def section(self) -> StreamSection:
        """This daemon's settings section (``[panorama]``, ``[mirage]``, ...)."""
        return getattr(self.settings, self.name)  # type: ignore[no-any-return]

    @property
    def block_ms(self) -> int:
        """How long a read waits for new entries: the section's ``interval``."""
        return int(self.section.interval * 1000)

    def streams(self) -> list[str]:
        """The streams this daemon consumes."""
        raise NotImplementedError

    def prepare(self) -> None:
        """The subclass's start-up, before the consumer groups are created."""

    def setup(self) -> None:
        self.prepare()
        self.consumer = StreamConsumer(
            self.redis,
            self.streams(),
            self.name,
            consumer_name(self.name),
            claim_idle_ms=self.section.claim_idle * 1000,
            count=self.read_count,
        )
        self.consumer.ensure_groups()

    @contextmanager
    def recovering(self, errors: tuple[type[BaseException], ...] = (Exception,)) -> Iterator[None]:
        """Around reading or handling entries: on ``errors``, make the next read start
        with this consumer's pending entries, then let the error reach the policy."""
        try:
            yield
        except errors:
            self.consumer.recover()
            raise

    def read(
        self, block_ms: int | None = None, held: Container[tuple[str, bytes]] = ()
    ) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        """The next entries (``StreamConsumer.read``), waiting up to ``block_ms``
        (default ``block_ms``), under ``recovering``."""
        with self.recovering():
            return self.consumer.read(self.block_ms if block_ms is None else block_ms, held)

    def event_of(
        self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> AnomalyEvent | None:
        """The entry's anomaly event; None for a malformed entry, which is counted
        (``malformed_entries``), logged and acknowledged."""
        try:
            return AnomalyEvent.from_fields(fields)
        except ValueError as exc:
            self.counters.inc("malformed_entries")
            self.log.warning("dropping malformed entry %s on %s: %s", entry_id, stream, exc)
            self.consumer.ack(stream, entry_id)
            return None
