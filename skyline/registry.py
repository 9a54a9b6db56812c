"""Registries for Skyline's extension points: one module in a folder adds one extension.

An extension point (algorithms, alert channels, ingest protocols, pull sources) is a
folder plus a ``Registry``.  Each module in the folder registers what it defines::

    # skyline/alerting/channels/teams.py
    from skyline.alerting.channels import CHANNELS

    @CHANNELS.register("teams")
    class Teams: ...

``Registry.load()`` imports every module of the folder once, so adding the file is
the whole change: nothing else lists the extensions.  Code that needs the complete
set (the settings models, the settings docs, a daemon at start-up) calls ``load()``
first; it is cheap after the first call.

This module imports nothing from ``skyline``: any layer may use it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["DuplicateExtension", "Registry", "UnknownExtension"]

T = TypeVar("T")


class DuplicateExtension(RuntimeError):
    """Two modules registered the same name at one extension point."""


class UnknownExtension(KeyError):
    """A name that no module of the extension point registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> extension for one extension point, filled by the modules of ``package``."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, item: T) -> T:
        if name in self._items and self._items[name] is not item:
            raise DuplicateExtension(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of ``add``."""

        def decorate(item: T) -> T:
            return self.add(name, item)

        return decorate

    def load(self) -> Registry[T]:
        """Import every module of the package (once) so that each registers itself."""
        if not self._loaded:
            pkg = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
            self._loaded = True
        return self

    def reload(self) -> Registry[T]:
        """Look for modules again (a test that adds one to the package's path)."""
        self._loaded = False
        return self.load()

    def get(self, name: str) -> T:
        self.load()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownExtension(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def names(self) -> list[str]:
        """Registered names in registration order (modules load alphabetically)."""
        self.load()
        return list(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        self.load()
        return iter(list(self._items.items()))
