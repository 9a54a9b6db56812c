"""Building blocks of the settings schema: the error type, ``key`` and base sections.

Kept apart from ``skyline.settings`` so that section modules (``settings_alerting``)
can use them without importing the whole schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Port = int
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


# The three-sigma ensemble in earthgecko's optimised order (cheap, often-decisive
# first): the default of [analyzer] and [mirage] algorithms.  It equals
# skyline.algorithms.CLASSIC_ORDER (a test keeps them equal); it is spelled here so
# that loading settings does not import the numeric libraries.
DEFAULT_ENSEMBLE: tuple[str, ...] = (
    "histogram_bins",
    "first_hour_average",
    "stddev_from_average",
    "grubbs",
    "ks_test",
    "mean_subtraction_cumulation",
    "median_absolute_deviation",
    "stddev_from_moving_average",
    "least_squares",
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


Port = int
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LoopSection(Section):
    interval: float = key(60.0, "Seconds between two runs of the daemon's main loop.", "s", gt=0)


class ListenerSection(Section):
    bind: str = key("127.0.0.1", "Address the listeners bind to; 0.0.0.0 for all interfaces.")
