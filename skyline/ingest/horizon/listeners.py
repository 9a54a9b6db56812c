"""Horizon's sockets: every protocol registered in ``skyline.ingest.horizon.protocols``
(Graphite line and pickle over TCP, UDP, ...), on one asyncio event loop in its own
thread, serving any number of concurrent clients.

Each protocol turns bytes into items and hands them to ``Intake``.  Bad input is
counted and dropped and the connection kept, except for a pickle frame whose length
prefix is over the cap (the stream cannot be resynchronised): that connection is
closed.  When the buffer is over its high watermark every TCP transport stops
reading until it drains below the low watermark.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from collections.abc import Callable

from skyline.ingest.horizon.intake import Intake
from skyline.ingest.horizon.protocols import ProtocolSpec, by_port
from skyline.runtime.daemon import StartupError
from skyline.runtime.threads import ThreadPolicy
from skyline.settings import HorizonSection

log = logging.getLogger("skyline.horizon")


class Listeners:
    """Owns the event loop thread, the servers and the set of open connections."""

    def __init__(self, config: HorizonSection, intake: Intake) -> None:
        self.config = config
        self.intake = intake
        self.loop = asyncio.new_event_loop()
        self.transports: set[asyncio.Transport] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.datagrams: list[asyncio.DatagramTransport] = []
        self.ports: dict[str, int] = {}
        self.bugs = ThreadPolicy("horizon-listeners", log, intake.counters)
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="horizon-listeners", daemon=True
        )
        intake.buffer.on_pause = lambda: self.loop.call_soon_threadsafe(self._pause)
        intake.buffer.on_resume = lambda: self.loop.call_soon_threadsafe(self._resume)

    # Lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Bind every port (StartupError names a taken port and its key) and serve."""
        self._thread.start()
        try:
            self._call(self._bind_all)
        except StartupError:
            self.stop()
            raise
        self.loop.call_soon_threadsafe(self._tick)

    def _call(self, coro_fn: Callable[[], object]) -> object:
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(30)  # type: ignore[arg-type]

    async def _bind_all(self) -> None:
        """Every registered protocol on its ``[horizon]`` port key."""
        bind = self.config.bind
        for spec in by_port():
            port = getattr(self.config, spec.port_key)
            try:
                self.ports[spec.port_key] = await self._bind(spec, bind, port)
            except OSError as exc:
                raise StartupError(_bind_error(exc, bind, port, spec.port_key)) from None

    async def _bind(self, spec: ProtocolSpec, bind: str, port: int) -> int:
        """Serve ``spec`` on ``port``; returns the port bound (port 0 picks one)."""
        if spec.transport == "udp":
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: spec.factory(self), local_addr=(bind, port)
            )
            self.datagrams.append(transport)
            return int(transport.get_extra_info("sockname")[1])
        server = await self.loop.create_server(
            lambda: spec.factory(self),
            bind,
            port,
            reuse_address=True,
            backlog=1024,
        )
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def _tick(self) -> None:
        """Seal due batches and report gauges, on the loop, several times a second.  A
        bug here is counted and logged and the ticks go on: without them a slow
        sender's points would wait in the open batch until it filled."""
        try:
            self.intake.buffer.seal_if_due()
            self.intake.counters.gauge("connections", len(self.transports))
        except Exception:  # noqa: BLE001 - a bug (ThreadPolicy logs it): tick again anyway
            self.bugs.bug("sealing due batches")
        finally:
            self.loop.call_later(min(0.05, self.config.batch_interval / 2), self._tick)

    def stop(self) -> None:
        """Stop accepting, close every connection, seal the open batch, end the loop."""
        if not self.loop.is_running():
            return

        async def close() -> None:
            for server in self.servers:
                server.close()
            for transport in list(self.transports):
                transport.close()
            for datagram in self.datagrams:
                datagram.close()
            await asyncio.sleep(0)
            self.intake.buffer.seal()

        try:
            self._call(close)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    # Connections and backpressure ---------------------------------------------------
    def register(self, transport: asyncio.Transport) -> bool:
        if len(self.transports) >= self.config.max_connections:
            self.intake.counters.inc("connections_refused")
            return False
        self.transports.add(transport)
        self.intake.counters.inc("connections_accepted")
        if self.intake.buffer.paused:
            transport.pause_reading()
        return True

    def unregister(self, transport: asyncio.Transport) -> None:
        self.transports.discard(transport)

    def _pause(self) -> None:
        for transport in self.transports:
            if not transport.is_closing():
                transport.pause_reading()

    def _resume(self) -> None:
        if self.intake.buffer.paused:
            return
        for transport in self.transports:
            if not transport.is_closing():
                transport.resume_reading()


def _bind_error(exc: OSError, bind: str, port: int, key: str) -> str:
    what = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
    return (
        f"port {port} on {bind} {what}; move it with [horizon] {key} "
        f"or SKYLINE__HORIZON__{key.upper()}"
    )
