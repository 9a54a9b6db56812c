"""Building blocks of the settings schema: the error type, ``key`` and base sections.

Kept apart from ``skyline.settings`` so that section modules (``settings_alerting``)
can use them without importing the whole schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from skyline.registry import Registry

Port = int
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


# The algorithms are extensions (skyline.registry): the modules of this package register
# themselves.  Settings may not import skyline.analysis, so they find the registry by
# package name when a value is checked or a default made, never at import time.
ALGORITHM_PACKAGE = "skyline.analysis.algorithms.classic"


def algorithm_registry() -> Registry[Any]:
    """The algorithm registry, loaded (imports the algorithm modules on first use)."""
    return Registry.of(ALGORITHM_PACKAGE).load()


def default_algorithms() -> list[str]:
    """The default ensemble: the registered algorithms that have a position, in order."""
    return algorithm_registry().defaults()


def check_algorithms(names: list[str]) -> list[str]:
    """Every name must be a registered algorithm."""
    registry = algorithm_registry()
    unknown = [n for n in names if n not in registry]
    if unknown:
        known = ", ".join(sorted(registry.names()))
        raise ValueError(f"unknown algorithm {unknown[0]!r}; known: {known}")
    return names


# An ensemble's algorithms, in the order run: checked against the registry.
AlgorithmList = Annotated[list[str], AfterValidator(check_algorithms)]


def algorithms_key(doc: str) -> Any:
    """Declare an ``AlgorithmList`` setting: the default ensemble by default, and the
    docs list the known algorithms (``choices``: the registry's package)."""
    return Field(
        default_factory=default_algorithms,
        description=doc,
        json_schema_extra={"unit": "", "choices": ALGORITHM_PACKAGE},
    )


def check_consensus(consensus: int, algorithms: list[str]) -> None:
    """The ensemble's consensus must be reachable: at most the number of algorithms."""
    if consensus > len(algorithms):
        raise ValueError(
            f"consensus {consensus} is more than the {len(algorithms)} algorithms; "
            "lower consensus or add algorithms"
        )


class SettingsError(ValueError):
    """An invalid settings file or value; ``str()`` is one line naming the fix."""


def key(default: Any, doc: str, unit: str = "", *, socket: str = "", **constraints: Any) -> Any:
    """Declare a setting with its documentation (``unit`` is shown in the docs).

    A listening port (unit ``port``) of a daemon names its socket type, ``tcp`` (the
    default) or ``udp``: ``skyline start --pick-free-ports`` moves it when it is taken."""
    extra = {"unit": unit, "socket": socket} if socket else {"unit": unit}
    return Field(default, description=doc, json_schema_extra=extra, **constraints)  # type: ignore[arg-type]


def give_up_after() -> float:
    """The ``give_up_after`` key every alert channel's table has."""
    return key(  # type: ignore[no-any-return]
        0.0,
        "Keep retrying a failed alert on this channel this long; 0: [alerters] give_up_after.",
        "s",
        ge=0,
    )


class Section(BaseModel):
    # no inf or NaN in any number: an interval of inf overflowed the loops that read it
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class LoopSection(Section):
    interval: float = key(60.0, "Seconds between two runs of the daemon's main loop.", "s", gt=0)


class ListenerSection(Section):
    bind: str = key("127.0.0.1", "Address the listeners bind to; 0.0.0.0 for all interfaces.")
