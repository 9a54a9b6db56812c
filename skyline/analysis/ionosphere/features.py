"""Feature extraction: a fixed tsfresh feature set with stable integer ids.

tsfresh's ``feature_calculators`` are called directly on numpy arrays: the same
numbers as ``extract_features`` without its pandas machinery (measured in
``utils/bench/features.py``: 8-20 ms against 12-30 ms for the same set through
``extract_features`` on a loaded 2-core machine, and 140-420 ms for tsfresh's
EfficientFCParameters).  The set (``feature_spec``) leaves out the calculators that
dominate tsfresh's cost.

Every feature name has an integer id in ``feature_ids.FEATURE_IDS`` that never
changes (only ever extended; a golden file in the tests pins it).  ``sync_features``
writes the table into the SQL ``features`` table, at daemon start and on
``skyline db upgrade``.

Extraction never raises anything but ``FeaturesError`` (a ValueError): non-finite
points are dropped, a calculator that fails or returns NaN/inf is left out of the
result (and counted in ``Features.failed``), so the result is NaN-free.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.feature_ids import FEATURE_IDS
from skyline.analysis.ionosphere.feature_spec import PARAMETERISED, SIMPLE
from skyline.db.models import Feature

MIN_POINTS = 10  # fewer finite points than this carry no shape worth comparing


class FeaturesError(ValueError):
    """The series cannot be described by features (too short, nothing finite...)."""


@dataclass(frozen=True)
class Features:
    """Feature ids (ascending) and their finite values, for one series."""

    ids: np.ndarray
    values: np.ndarray
    calc_time: float = 0.0
    failed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def total(self) -> float:
        return float(np.sum(self.values)) if len(self.values) else 0.0

    def by_id(self) -> dict[int, float]:
        return {int(i): float(v) for i, v in zip(self.ids, self.values, strict=True)}


def _calculators():  # imported lazily: tsfresh pulls in pandas/statsmodels (slow import)
    from tsfresh.feature_extraction import feature_calculators

    return feature_calculators


def _param_name(params: dict) -> str:
    return "__".join(f"{k}_{v}" for k, v in sorted(params.items()))


def _compute(x: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """Every feature of the spec by name; calculators that raise are listed apart."""
    fc = _calculators()
    out: dict[str, float] = {}
    failed: list[str] = []
    for name, _why in SIMPLE:
        try:
            out[f"value__{name}"] = float(getattr(fc, name)(x))
        except Exception:  # noqa: BLE001 - a failing calculator only loses its feature
            failed.append(name)
    for name, params, _why in PARAMETERISED:
        calc = getattr(fc, name)
        try:
            if calc.fctype == "combiner":
                for suffix, value in calc(x, params):
                    out[f"value__{name}__{suffix}"] = float(value)
            else:
                for p in params or []:
                    out[f"value__{name}__{_param_name(p)}"] = float(calc(x, **p))
        except Exception:  # noqa: BLE001 - a failing calculator only loses its feature
            failed.append(name)
    return out, failed


def feature_names() -> list[str]:
    """The names the spec produces, in spec order (computed on a harmless series)."""
    x = np.sin(np.arange(200) / 7.0) + np.arange(200) / 50.0 + 2.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        names, _ = _compute(x)
    return list(names)


def extract(values: np.ndarray) -> Features:
    """Features of a series' values (oldest first); raises ``FeaturesError`` only."""
    try:
        x = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise FeaturesError(f"values are not numeric: {exc}") from None
    x = x[np.isfinite(x)]
    if len(x) < MIN_POINTS:
        raise FeaturesError(f"too short: {len(x)} finite points, at least {MIN_POINTS} needed")
    t0 = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        named, failed = _compute(x)
    ids, vals = [], []
    for name, value in named.items():
        fid = FEATURE_IDS.get(name)
        if fid is None or not np.isfinite(value):
            continue
        ids.append(fid)
        vals.append(value)
    order = np.argsort(ids)
    return Features(np.asarray(ids, np.int64)[order], np.asarray(vals, np.float64)[order],
                    time.perf_counter() - t0, tuple(failed))  # fmt: skip


def sync_features(engine: Engine) -> int:
    """Insert the features of ``FEATURE_IDS`` missing from SQL; returns how many.

    A row whose name differs from the code's for the same id means the table was
    edited by hand or by an incompatible version: refused with a ValueError."""
    with Session(engine) as db:
        known = dict(db.execute(select(Feature.id, Feature.name)).all())
        for name, fid in FEATURE_IDS.items():
            if fid in known and known[fid] != name:
                raise ValueError(f"features table: id {fid} is {known[fid]!r}, expected {name!r}")
        missing = [(fid, name) for name, fid in FEATURE_IDS.items() if fid not in known]
        db.add_all(Feature(id=fid, name=name) for fid, name in missing)
        db.commit()
    return len(missing)
