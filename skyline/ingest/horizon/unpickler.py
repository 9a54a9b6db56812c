"""Loading Graphite pickle frames safely.

carbon-relay sends ``pickle.dumps([(name, (timestamp, value)), ...], protocol=2)``.
Such a pickle holds only lists, tuples, strings and numbers, so the unpickler here
resolves *no* global at all: any pickle that names a class or function (the way a
malicious ``__reduce__`` runs a command) fails before anything runs.  Frames larger
than the cap are refused before they are read.
"""

from __future__ import annotations

import io
import pickle


class UnsafePickle(pickle.UnpicklingError):
    """The pickle referenced a global (class, function): refused, nothing was run."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise UnsafePickle(f"pickle references global {module[:60]}.{name[:60]}")

    def persistent_load(self, pid: object) -> object:
        raise UnsafePickle("pickle uses persistent ids")


def loads(data: bytes) -> object:
    """Unpickle plain data; raise UnsafePickle or another UnpicklingError otherwise."""
    return _NoGlobals(io.BytesIO(data)).load()
