"""Ionosphere's feature set: stable ids (golden file), sane values, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere.feature_ids import FEATURE_IDS
from skyline.analysis.ionosphere.features import (
    FeaturesError,
    extract,
    feature_names,
    sync_features,
)
from skyline.db import make_engine, upgrade
from skyline.db.models import Feature

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "ionosphere_feature_ids.json"


def by_name(values) -> dict[str, float]:
    f = extract(values)
    names = {i: n for n, i in FEATURE_IDS.items()}
    return {names[int(i)]: float(v) for i, v in zip(f.ids, f.values, strict=True)}


def test_ids_match_the_golden_file_and_are_only_ever_extended():
    golden = {name: fid for fid, name in json.loads(GOLDEN.read_text())}
    for name, fid in golden.items():
        assert FEATURE_IDS.get(name) == fid, f"feature {name} changed id: ids must never change"
    assert len(set(FEATURE_IDS.values())) == len(FEATURE_IDS)
    new = {n: i for n, i in FEATURE_IDS.items() if n not in golden}
    assert all(i > max(golden.values()) for i in new.values()), "new features get new ids"


def test_every_computed_feature_has_an_id():
    names = feature_names()
    assert len(names) == len(set(names))
    assert set(names) <= set(FEATURE_IDS), set(names) - set(FEATURE_IDS)


def test_costly_calculators_are_not_in_the_set():
    for costly in ("approximate_entropy", "sample_entropy", "change_quantiles",
                   "number_cwt_peaks", "augmented_dickey_fuller", "agg_linear_trend"):  # fmt: skip
        assert not any(f"__{costly}" in n for n in FEATURE_IDS)


def test_ramp_features_are_the_known_values():
    x = np.arange(1, 101, dtype=float)
    f = by_name(x)
    assert f["value__sum_values"] == 5050.0
    assert f["value__mean"] == 50.5
    assert f["value__length"] == 100
    assert f["value__maximum"] == 100 and f["value__minimum"] == 1
    assert f["value__mean_change"] == pytest.approx(1.0)
    assert f['value__linear_trend__attr_"slope"'] == pytest.approx(1.0)
    assert f["value__absolute_sum_of_changes"] == 99.0
    assert f["value__abs_energy"] == float(np.sum(x * x))


def test_sine_features_see_its_period_and_symmetry():
    x = np.sin(2 * np.pi * np.arange(1440) / 144.0)
    f = by_name(x)
    assert abs(f["value__mean"]) < 1e-9
    assert f["value__skewness"] == pytest.approx(0.0, abs=1e-6)
    assert f["value__standard_deviation"] == pytest.approx(np.sqrt(0.5), rel=1e-3)
    assert f["value__number_crossing_m__m_0"] >= 19


def test_constant_series_gives_only_finite_features():
    f = extract(np.full(200, 7.0))
    assert f.count > 50 and np.isfinite(f.values).all()
    assert FEATURE_IDS["value__autocorrelation__lag_1"] not in f.ids  # undefined (0/0): left out


def test_nan_points_are_dropped_not_propagated():
    x = np.sin(np.arange(500) / 10.0)
    with_nan = x.copy()
    with_nan[::7] = np.nan
    f = extract(with_nan)
    assert np.isfinite(f.values).all()
    assert by_name(with_nan)["value__length"] == np.isfinite(with_nan).sum()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full(100, np.nan), "too short"),
        (np.array([1.0, 2.0, 3.0]), "too short"),
        ([], "too short"),
        (["a", "b"], "not numeric"),
    ],
)
def test_bad_input_is_refused_clearly(values, message):
    with pytest.raises(FeaturesError, match=message):
        extract(values)


def test_huge_and_negative_values_give_finite_features():
    x = np.sin(np.arange(300) / 5.0) * 1e200
    f = extract(x)
    assert np.isfinite(f.values).all() and f.count > 50
    assert FEATURE_IDS["value__abs_energy"] not in f.ids  # overflows: left out
    assert np.isfinite(extract(-np.arange(100.0)).values).all()


def test_sync_features_fills_the_table_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    assert sync_features(engine) == len(FEATURE_IDS)
    assert sync_features(engine) == 0
    with Session(engine) as db:
        assert dict(db.execute(select(Feature.name, Feature.id)).all()) == FEATURE_IDS
        db.get(Feature, 1).name = "value__renamed"
        db.commit()
    with pytest.raises(ValueError, match="id 1 is 'value__renamed'"):
        sync_features(engine)
