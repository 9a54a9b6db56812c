"""Horizon's ingest protocols: one module per protocol, each registering a ``ProtocolSpec``.

A module holds its wire-format parser, its asyncio protocol class and one
``register(ProtocolSpec(...))`` naming its ``[horizon]`` port key and default port.
Nothing else lists the protocols: ``Listeners`` binds every registered one, and
``skyline.settings`` discovers this package by name to add each port key to
``[horizon]`` (which ``skyline start --pick-free-ports`` then moves when taken).
See docs/extending.md.

A protocol module may import the parsing vocabulary (``skyline.ingest.horizon.parsing``)
and ``skyline.store.datapoint``, but not ``skyline.settings`` or the listeners at run
time: the settings import this package while they are being built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from skyline.registry import Registry

if TYPE_CHECKING:
    from skyline.ingest.horizon.listeners import Listeners

__all__ = ["PROTOCOLS", "ProtocolSpec", "TcpProtocol", "register"]


@dataclass(frozen=True)
class ProtocolSpec:
    """One listening socket of horizon.

    ``port_key``: its ``[horizon]`` settings key (``line_port``), ``default_port`` its
    default and ``doc`` its documentation.  ``transport``: ``tcp`` (a server, one
    ``factory(listeners)`` per connection) or ``udp`` (one datagram endpoint).
    """

    name: str
    port_key: str
    default_port: int
    doc: str
    transport: Literal["tcp", "udp"]
    factory: Callable[[Listeners], asyncio.BaseProtocol]


PROTOCOLS: Registry[ProtocolSpec] = Registry("ingest protocol", __name__)


def register(spec: ProtocolSpec) -> ProtocolSpec:
    """Add a protocol under its name (a module calls this once)."""
    return PROTOCOLS.add(spec.name, spec)


def by_port() -> list[ProtocolSpec]:
    """The registered protocols, ordered by default port."""
    return sorted((spec for _, spec in PROTOCOLS.items()), key=lambda s: s.default_port)


class TcpProtocol(asyncio.Protocol):
    """A TCP connection counted by the listeners (refused past max_connections, paused
    under backpressure); a subclass implements ``data_received``."""

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
