"""Horizon's sockets: Graphite line (TCP), Graphite pickle (TCP) and UDP, on one
asyncio event loop in its own thread, serving any number of concurrent clients.

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
from functools import partial

from skyline.ingest.horizon.intake import Intake
from skyline.ingest.horizon.parsing import (
    FrameSplitter,
    FrameTooLarge,
    LineSplitter,
    Malformed,
    datagram_items,
    parse_lines,
    pickle_items,
)
from skyline.runtime.daemon import StartupError
from skyline.settings import HorizonSection
from skyline.store.datapoint import printable

log = logging.getLogger("skyline.horizon")


class _Tcp(asyncio.Protocol):
    def __init__(self, hub: Listeners) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.hub.register(transport):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.hub.unregister(self.transport)


class LineProtocol(_Tcp):
    def __init__(self, hub: Listeners) -> None:
        super().__init__(hub)
        self.splitter = LineSplitter(hub.config.max_line_length)

    def data_received(self, data: bytes) -> None:
        lines, too_long = self.splitter.feed(data)
        intake = self.hub.intake
        if too_long:
            intake.malformed_input(Malformed.LINE_TOO_LONG, data[:120], too_long)
        items, bad = parse_lines(lines)
        for line, reason in bad:
            intake.malformed_input(reason, line)
        if items:
            intake.items(items)


class PickleProtocol(_Tcp):
    def __init__(self, hub: Listeners) -> None:
        super().__init__(hub)
        self.splitter = FrameSplitter(hub.config.max_pickle_frame)

    def data_received(self, data: bytes) -> None:
        intake = self.hub.intake
        try:
            for frame in self.splitter.feed(data):
                intake.counters.inc("pickle_frames")
                items, bad, refused = pickle_items(frame)
                if refused is Malformed.PICKLE_UNSAFE:  # rate-limited like every reject
                    intake.malformed_input(
                        refused, f"from {self._peer()}: {frame[:60]!r}", level=logging.WARNING
                    )
                elif refused:
                    intake.malformed_input(refused, frame)
                if bad:
                    intake.malformed_input(Malformed.PICKLE_SHAPE, frame, bad)
                if items:
                    intake.items(items)
        except FrameTooLarge as exc:
            intake.malformed_input(Malformed.FRAME_TOO_LARGE, data[:16])
            log.warning("closing %s: %s (cap %d)", self._peer(), exc, self.splitter.max_frame)
            if self.transport is not None:
                self.transport.abort()

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return printable(peer)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, hub: Listeners) -> None:
        self.hub = hub

    def datagram_received(self, data: bytes, addr: object) -> None:
        intake = self.hub.intake
        items, bad, refused = datagram_items(data, self.hub.config.max_line_length)
        if refused:
            intake.malformed_input(refused, data)
        if bad:
            intake.malformed_input(Malformed.LINE_FIELDS, data, bad)
        if items:
            intake.items(items)
        if self.hub.intake.buffer.paused:
            intake.counters.inc("udp_received_while_paused", len(items))


class Listeners:
    """Owns the event loop thread, the servers and the set of open connections."""

    PORTS = (("line_port", LineProtocol), ("pickle_port", PickleProtocol))

    def __init__(self, config: HorizonSection, intake: Intake) -> None:
        self.config = config
        self.intake = intake
        self.loop = asyncio.new_event_loop()
        self.transports: set[asyncio.Transport] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.udp: asyncio.DatagramTransport | None = None
        self.ports: dict[str, int] = {}
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
        bind = self.config.bind
        for key, protocol in self.PORTS:
            port = getattr(self.config, key)
            try:
                server = await self.loop.create_server(
                    partial(protocol, self), bind, port, reuse_address=True, backlog=1024
                )
            except OSError as exc:
                raise StartupError(_bind_error(exc, bind, port, key)) from None
            self.servers.append(server)
            self.ports[key] = server.sockets[0].getsockname()[1]
        try:
            self.udp, _ = await self.loop.create_datagram_endpoint(
                lambda: UdpProtocol(self), local_addr=(bind, self.config.udp_port)
            )
        except OSError as exc:
            raise StartupError(_bind_error(exc, bind, self.config.udp_port, "udp_port")) from None
        self.ports["udp_port"] = self.udp.get_extra_info("sockname")[1]

    def _tick(self) -> None:
        """Seal due batches and report gauges, on the loop, several times a second."""
        self.intake.buffer.seal_if_due()
        self.intake.counters.gauge("connections", len(self.transports))
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
            if self.udp is not None:
                self.udp.close()
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
