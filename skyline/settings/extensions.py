"""The extension registries the settings models are built from, found by package name.

The settings package imports nothing else from ``skyline`` statically.  The one
exception is here: the alert channels (``skyline.alerting.channels``) and horizon's
ingest protocols (``skyline.ingest.horizon.protocols``) each declare their own
settings (a channel's ``[alerters.<name>]`` table, a protocol's ``[horizon]`` port
key), so ``[alerters]`` and ``[horizon]`` are assembled from those registries,
imported with ``importlib`` by package name.  Only each registry's entries are read,
duck-typed (see ``ChannelExtension`` and ``ProtocolExtension``).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

CHANNELS_PACKAGE = "skyline.alerting.channels"
PROTOCOLS_PACKAGE = "skyline.ingest.horizon.protocols"


class ChannelExtension(Protocol):
    """What settings read of an alert channel (skyline.alerting.channels.ChannelSpec)."""

    name: str
    settings: type[Any]
    named: bool
    boundary_limit: tuple[int, int] | None

    @property
    def table_name(self) -> str: ...

    @property
    def forms(self) -> list[str]: ...

    def matches(self, channel: str) -> bool: ...


class ProtocolExtension(Protocol):
    """What settings read of an ingest protocol (skyline.ingest.horizon.protocols.ProtocolSpec)."""

    name: str
    port_key: str
    default_port: int
    doc: str
    transport: str


def _registry(package: str, attribute: str) -> Any:
    return getattr(importlib.import_module(package), attribute).load()


def channels() -> list[ChannelExtension]:
    """Every registered alert channel, in registration order."""
    return [spec for _, spec in _registry(CHANNELS_PACKAGE, "CHANNELS").items()]


def protocols() -> list[ProtocolExtension]:
    """Every registered horizon ingest protocol, in registration order."""
    return [spec for _, spec in _registry(PROTOCOLS_PACKAGE, "PROTOCOLS").items()]


def channel_forms() -> str:
    """How rules may name channels: ``pagerduty, slack, ..., webhook-NAME or an email address``."""
    forms = [form for spec in channels() for form in spec.forms]
    words = sorted(f for f in forms if " " not in f) + [f for f in forms if " " in f]
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


def check_channel(channel: str) -> str:
    """A rule's channel name, if a registered channel claims it; else ValueError."""
    if any(spec.matches(channel) for spec in channels()):
        return channel
    raise ValueError(f"unknown channel {channel!r}: use {channel_forms()}")


def counted_as(channel: str) -> str:
    """The name a rule's channel is counted under: the channel's own name for a name
    that only means it (an email address: ``smtp``), else the rule's name as given."""
    for spec in channels():
        if spec.matches(channel):
            return channel if spec.named else spec.name
    return channel
