"""Alert channels: one module per channel, each registering a ``ChannelSpec`` in ``CHANNELS``.

A module holds the channel class, its settings model (the ``[alerters.<table>]``
table) and one ``CHANNELS.add(ChannelSpec(...))``.  Nothing else lists the channels:
``make_channel`` looks rule names up here, and ``skyline.settings`` discovers this
package by name to build ``[alerters]``, check the channel names of ``[[alerts]]`` and
``[[boundary]]`` rules and document every table (see docs/extending.md).

A rule's channel name that no channel claims, or a ``webhook-NAME`` without its table,
becomes a channel whose every delivery fails permanently, saying why, so a typo in a
rule shows up in the alert log instead of silently dropping alerts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skyline.alerting.base import Alert, Channel, PermanentError, Progress
from skyline.registry import Registry

if TYPE_CHECKING:
    from skyline.settings import AlertersSection
    from skyline.settings.base import Section

__all__ = ["CHANNELS", "ChannelSpec", "find", "graph_link_ttl", "make_channel", "register",
           "wants_graph"]  # fmt: skip


@dataclass(frozen=True)
class ChannelSpec:
    """What the rest of Skyline needs to know about one channel.

    ``name``: how ``[[alerts]]`` rules name it, and its table ``[alerters.<name>]``.
    ``settings``: the model of that table (a ``skyline.settings.base.Section``).
    ``build(channel_name, its_settings, timeout)``: the channel object.
    ``table``: the table's name when not ``name`` (webhook: ``webhooks``).
    ``named``: several instances, one table each, ``[alerters.<table>.NAME]``, named in
    rules ``<name>-NAME``.  ``also``/``also_doc``: a regex of further rule names that
    mean this channel and how to say it (smtp: an email address).
    ``graph``: attach the metric's graph.  ``graph_link(its_settings)``: for a channel
    that cannot attach the graph and links it instead (Slack's incoming webhook), the
    seconds the linked image is kept (0: it attaches the graph itself); the alerters
    store the image and give the channel ``Alert.graph_url``.  ``boundary_limit``: the
    default ``[boundary_daemon.channel_limits.<name>]`` as (alerts, per seconds).
    """

    name: str
    settings: type[Section]
    build: Callable[[str, Any, float], Channel]
    table: str = ""
    named: bool = False
    also: str = ""
    also_doc: str = ""
    graph: bool = False
    graph_link: Callable[[Any], int] | None = None
    boundary_limit: tuple[int, int] | None = None

    @property
    def table_name(self) -> str:
        return self.table or self.name

    @property
    def forms(self) -> list[str]:
        """How a rule may name the channel, for error texts and docs."""
        first = f"{self.name}-NAME" if self.named else self.name
        return [first, self.also_doc] if self.also_doc else [first]

    def matches(self, channel: str) -> bool:
        if self.named:
            own = re.fullmatch(rf"{re.escape(self.name)}-[A-Za-z0-9_.-]+", channel) is not None
        else:
            own = channel == self.name
        return own or bool(self.also and re.fullmatch(self.also, channel))

    def config(self, cfg: AlertersSection, channel: str) -> Section | None:
        """The settings of ``channel`` in ``[alerters]``; None for a missing named table."""
        value = getattr(cfg, self.table_name)
        if self.named:
            found: Section | None = value.get(channel.removeprefix(f"{self.name}-"))
            return found
        assert value is not None
        return value


CHANNELS: Registry[ChannelSpec] = Registry("alert channel", __name__)


def register(spec: ChannelSpec) -> ChannelSpec:
    """Add a channel under its rule name (a module calls this once)."""
    return CHANNELS.add(spec.name, spec)


def find(channel: str) -> ChannelSpec | None:
    """The channel a rule's channel name means, or None."""
    return next((spec for _, spec in CHANNELS.items() if spec.matches(channel)), None)


class Unconfigured:
    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason

    def send(self, alert: Alert, progress: Progress) -> None:
        raise PermanentError(self.reason)


def make_channel(name: str, cfg: AlertersSection) -> Channel:
    spec = find(name)
    if spec is None:
        return Unconfigured(name, f"unknown channel {name!r}: use {channel_forms()}")
    config = spec.config(cfg, name)
    if config is None:
        table = f"{spec.table_name}.{name.removeprefix(spec.name + '-')}"
        return Unconfigured(name, f"no [alerters.{table}] table")
    return spec.build(name, config, cfg.timeout)


def wants_graph(name: str) -> bool:
    spec = find(name)
    return spec is not None and spec.graph


def graph_link_ttl(name: str, cfg: AlertersSection) -> int:
    """Seconds a graph linked by channel ``name`` is kept; 0: the channel links none."""
    spec = find(name)
    if spec is None or spec.graph_link is None:
        return 0
    config = spec.config(cfg, name)
    return spec.graph_link(config) if config is not None else 0


# Last, once CHANNELS exists: importing a channel module first (``...channels.smtp``)
# must build the settings, which load every channel, before that module's body runs.
# (Importing skyline.settings.extensions imports skyline.settings.)
from skyline.settings.extensions import channel_forms  # noqa: E402
