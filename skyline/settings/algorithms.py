"""Settings of user-supplied algorithms: the ``[[custom_algorithms]]`` tables.

The function contract, time limits and consensus rules are in
``skyline.analysis.algorithms.custom`` and docs/crucible.md ("Custom algorithms").
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import model_validator

from skyline.settings.base import Section, key

App = Literal["analyzer", "mirage", "crucible"]


class CustomAlgorithm(Section):
    """Custom algorithms (CUSTOM_ALGORITHMS): a Python function run under a time limit beside the ensemble."""

    name: str = key(
        ...,
        "Name of the algorithm as it appears in triggered/run lists and scores (letters, "
        "digits, '_' and '-'; must not be one of the three-sigma algorithms).",
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$",
    )
    source: str = key(..., "Path of the .py file that defines the function.", "path")
    function: str = key("", "Name of the function in that file; empty means the same as name.")
    namespaces: list[str] = key(
        [],
        "Metric patterns it runs on, matched like [[alerts]] patterns (exact, substring, "
        "dotted elements, regex); empty means every metric.",
    )
    parameters: dict[str, Any] = key({}, "Passed to the function as its third argument.")
    max_execution_time: float = key(
        0.05,
        "Longest one call may run; a call still running is stopped, counted as a timeout and "
        "votes None.",
        "s",
        gt=0,
        le=60,
    )
    consensus: int = key(
        0,
        "0: the algorithm votes like the three-sigma algorithms; 1: when it triggers, the "
        "metric is anomalous whatever the others say.",
        "",
        ge=0,
        le=1,
    )
    run_before_3sigma: bool = key(
        False, "Run before the three-sigma ensemble rather than after it."
    )
    run_only_if_consensus: bool = key(
        False,
        "Run only when the ensemble before it has already reached consensus (an expensive "
        "second opinion); needs run_before_3sigma = false.",
    )
    use_with: list[App] = key(
        ["analyzer", "crucible"], "Where it runs: analyzer, mirage and/or crucible."
    )

    @model_validator(mode="after")
    def _coherent(self) -> CustomAlgorithm:
        if self.run_before_3sigma and self.run_only_if_consensus:
            raise ValueError(
                f"custom algorithm {self.name!r}: run_only_if_consensus needs the ensemble to "
                "run first; set run_before_3sigma = false"
            )
        if self.function and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.function):
            raise ValueError(
                f"custom algorithm {self.name!r}: function {self.function!r} is not a Python "
                "identifier"
            )
        return self

    @property
    def function_name(self) -> str:
        return self.function or self.name.replace("-", "_")
