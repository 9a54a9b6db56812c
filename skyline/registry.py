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
import sys
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["DuplicateExtension", "Registry", "UnknownExtension"]

T = TypeVar("T")


class DuplicateExtension(RuntimeError):
    """Two modules registered the same name at one extension point."""


class UnknownExtension(KeyError):
    """A name that no module of the extension point registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> extension for one extension point, filled by the modules of ``package``.

    An extension may be registered with a ``position``: the extensions that have one
    are the point's default selection, in that order (``defaults()``), e.g. the
    algorithms of the default ensemble.  Code that may not import the package (the
    settings) finds its registry by package name with ``Registry.of(package)``.
    """

    _by_package: dict[str, Registry[Any]] = {}

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._positions: dict[str, float] = {}
        self._modules: dict[str, str] = {}  # name -> the module that registered it
        self._loaded = False
        Registry._by_package[package] = self

    @classmethod
    def of(cls, package: str) -> Registry[Any]:
        """The registry of ``package``, importing the package (which creates it) if needed."""
        importlib.import_module(package)
        try:
            return cls._by_package[package]
        except KeyError:
            raise UnknownExtension(f"package {package!r} defines no registry") from None

    def add(self, name: str, item: T, *, position: float | None = None,
            module: str | None = None) -> T:  # fmt: skip
        """Register ``item`` as ``name``; ``module`` is where it is defined (default: the
        item's ``__module__``), so that ``reload`` can forget it when that module goes."""
        if name in self._items and self._items[name] is not item:
            raise DuplicateExtension(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        if position is not None:
            self._positions[name] = position
        origin = module or getattr(item, "__module__", None)
        if origin:
            self._modules[name] = origin
        return item

    def register(self, name: str, *, position: float | None = None) -> Callable[[T], T]:
        """Decorator form of ``add``."""

        def decorate(item: T) -> T:
            return self.add(name, item, position=position)

        return decorate

    def load(self) -> Registry[T]:
        """Import every module of the package (once) so that each registers itself."""
        if not self._loaded:
            for module in self._module_names():
                importlib.import_module(module)
            self._loaded = True
        return self

    def reload(self) -> Registry[T]:
        """Look for modules again (a test that adds a folder to the package's path, or
        removes it again): new modules are imported, and the extensions of modules no
        longer on the path are forgotten (and their modules unloaded)."""
        present = set(self._module_names())
        for name, module in list(self._modules.items()):
            if module.startswith(f"{self.package}.") and module not in present:
                self._items.pop(name, None)
                self._positions.pop(name, None)
                del self._modules[name]
                sys.modules.pop(module, None)
        self._loaded = False
        return self.load()

    def _module_names(self) -> list[str]:
        pkg = importlib.import_module(self.package)
        infos = sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name)
        return [f"{self.package}.{i.name}" for i in infos if not i.name.startswith("_")]

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

    def defaults(self) -> list[str]:
        """The names registered with a position, in position order (ties: registration
        order): the extension point's default selection."""
        self.load()
        named = [n for n in self._items if n in self._positions]
        return sorted(named, key=lambda n: self._positions[n])
