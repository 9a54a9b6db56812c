"""Learning on real SQL (SQLite and MariaDB) and Redis, with the real history source
(``store_history``: skyline/store/rollups.py over the raw store): a learn profile grows
generation-1 children from later unmatched anomalies within
max_percent_diff_from_origin, never beyond max_generations; a learnt profile is of
the anomaly's raw window and matches a later window; a longer-duration profile is
learnt at the history's resolution or not at all; passes are bounded and the
evaluated anomalies persist."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy.exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.analysis.ionosphere import learn
from skyline.analysis.ionosphere.check import check
from skyline.analysis.ionosphere.learn import Learner, limits, save_windows, store_history
from skyline.analysis.ionosphere.profile_data import load_data, load_metas
from skyline.analysis.ionosphere.profiles import create_profile
from skyline.analysis.ionosphere.window import history_window, raw_window
from skyline.db import make_engine, migrate
from skyline.db.models import (
    Anomaly,
    FeaturesProfile,
    LearnEvaluated,
    LearnOriginFeature,
    ProfileMatch,
)
from skyline.db.repo import get_or_create_metric
from skyline.store.keys import RedisKeys
from skyline.store.rollups import Rollups
from skyline.store.timeseries import TimeSeriesStore
from tests.integration import conftest_db

db_url = conftest_db.db_url
mysql_url = conftest_db.mysql_url
DAY = 86400
T_START = 1_699_920_000  # midnight UTC
METRIC = "web.learn"
DAYS = [T_START + k * DAY + 6 * 3600 for k in range(7)]  # the bump ends at 06:00 daily


def seed(store: TimeSeriesStore, metric: str = METRIC, days: int = 7,
         shift_from: int | None = None) -> None:  # fmt: skip
    """7 days of raw 60 s points: a daily sine and a bump ending at 06:00."""
    rng = np.random.default_rng(11)
    t = T_START + 60 * np.arange(days * 1440)
    tod = (t - T_START) % DAY
    v = 100 + 20 * np.sin(2 * np.pi * tod / DAY) + rng.normal(0, 1, len(t))
    v += np.where((tod >= 6 * 3600 - 1800) & (tod <= 6 * 3600), 40.0, 0.0)
    if shift_from is not None:
        v[t > shift_from] *= 3  # a level shift: not what the origin looked like
    store.append_grouped({metric: (t.tolist(), v.tolist())})


def add_anomaly(db: Session, ts: int, name: str, metric: str = METRIC) -> int:
    row = Anomaly(metric_id=get_or_create_metric(db, metric).id, timestamp=ts, value=1.0,
                  full_duration=DAY, source="analyzer", event_id=name,
                  verdict="sent_to_alerters")  # fmt: skip
    db.add(row)
    db.commit()
    return row.id


class Env:
    def __init__(self, make_settings, db_url, redis_client, **env: str) -> None:
        self.settings = make_settings(SKYLINE__DATABASE__URL=db_url,
                                      SKYLINE__IONOSPHERE__LEARN_FULL_DURATION_DAYS="2",
                                      SKYLINE__IONOSPHERE__LEARN_LOOKBACK=str(5 * DAY), **env)  # fmt: skip
        migrate.upgrade(db_url)
        self.engine = make_engine(db_url)
        self.redis = redis_client
        self.keys = RedisKeys(self.settings.redis.prefix)
        self.store = TimeSeriesStore(redis_client, self.keys)
        self.history = store_history(self.store, self.settings)
        self.counts: dict[str, int] = {}

    def learner(self) -> Learner:
        return Learner(self.engine, self.redis, self.keys, self.settings, self.history,
                       lambda n: self.counts.__setitem__(n, self.counts.get(n, 0) + 1),
                       store=self.store)  # fmt: skip

    def profile(
        self, series: np.ndarray, ts: int, duration: int = DAY, metric: str = METRIC
    ) -> int:
        return create_profile(self.engine, self.redis, self.keys, self.settings, metric=metric,
                              series=series, anomaly_timestamp=ts, full_duration=duration,
                              learn=True)  # fmt: skip


@pytest.fixture
def env(make_settings, db_url, redis_client):
    e = Env(make_settings, db_url, redis_client)
    yield e
    e.engine.dispose()


@pytest.mark.parametrize("max_generations", [1, 2])
def test_learning_within_generation_limits(make_settings, db_url, redis_client, max_generations):
    env = Env(make_settings, db_url, redis_client,
              SKYLINE__IONOSPHERE__MAX_GENERATIONS=str(max_generations))  # fmt: skip
    seed(env.store, shift_from=DAYS[6] - 4 * 3600)
    origin = env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    with Session(env.engine) as db:
        first, second = add_anomaly(db, DAYS[3], "a3"), add_anomaly(db, DAYS[4], "a4")
        matched = add_anomaly(db, DAYS[5], "a5")
        db.add(ProfileMatch(profile_id=origin, event_id="a5", metric_timestamp=DAYS[5],
                            match_type="features"))  # fmt: skip
        different = add_anomaly(db, DAYS[6], "a6")
        db.commit()
        lim = limits(get_or_create_metric(db, METRIC), env.settings.ionosphere)
        assert lim["max_generations"] == max_generations
    learner = env.learner()
    assert learner.run_pass(DAYS[6] + 3700) == 2
    assert learner.run_pass(DAYS[6] + 3700) == 0  # nothing learnt twice
    with Session(env.engine) as db:
        rows = db.scalars(select(FeaturesProfile).order_by(FeaturesProfile.id)).all()
        learnt = {r.anomaly_id: r for r in rows if r.id != origin}
        assert set(learnt) == {first, second}  # not the matched one, not the shifted one
        assert matched not in learnt and different not in learnt
        a, b = learnt[first], learnt[second]
        assert (a.parent_id, a.generation, a.validated, a.learn) == (origin, 1, False, True)
        if max_generations == 1:
            assert (b.parent_id, b.generation) == (origin, 1)
        else:
            assert (b.parent_id, b.generation) == (a.id, 2)
        assert max(r.generation for r in rows) <= max_generations
        assert "from origin profile" in a.label
    assert env.counts.get("learn.too_different", 0) >= 1
    assert env.redis.get(env.keys.profiles_version(METRIC)) == b"3"
    env.engine.dispose()


def test_a_learnt_profile_is_raw_and_matches_a_later_window(env):
    """The learnt profile is the anomaly's raw 60 s window (not the 600 s history), so
    a later day's raw window — what a check compares — matches it by its features."""
    seed(env.store)
    origin = env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    with Session(env.engine) as db:
        anomaly_id = add_anomaly(db, DAYS[3], "a3")
    assert env.learner().run_pass(DAYS[3] + 3700) == 1
    with Session(env.engine) as db:
        fp = db.scalars(
            select(FeaturesProfile).where(FeaturesProfile.anomaly_id == anomaly_id)
        ).one()
        learnt, resolution, n = fp.id, fp.resolution, len(fp.series)
    assert resolution == 60 and n == 1440
    set_only = [m for m in load_metas(env.engine, METRIC) if m.id == learnt]
    later = raw_window(env.store, METRIC, DAYS[5], DAY)[:, 1]
    result = check(later, set_only, load_data(env.engine, [learnt]), DAY,
                   env.settings.ionosphere)  # fmt: skip
    assert result.compared == [learnt]
    assert result.match is not None and result.match.profile_id == learnt
    assert result.match.match_type == "features"
    assert origin != learnt


def test_a_learnt_profile_uses_the_window_kept_at_check_time(env):
    """The raw store no longer holds the anomaly's window start: the window ionosphere
    kept when it did not match the anomaly (learn_windows) is used; without it the
    anomaly is refused (counted), not learnt at another resolution."""
    seed(env.store)
    origin_series = raw_window(env.store, METRIC, DAYS[2], DAY)
    kept = raw_window(env.store, METRIC, DAYS[4], DAY)
    env.profile(origin_series, DAYS[2])
    with Session(env.engine) as db:
        a4, a5 = add_anomaly(db, DAYS[4], "a4"), add_anomaly(db, DAYS[5], "a5")
    save_windows(env.engine, METRIC, "a4", DAYS[4], {DAY: kept})
    _trim(env, DAYS[5] + 2 * 3600)  # roomba: a4's window start is gone, a5's too
    assert env.learner().run_pass(DAYS[5] + 3700) == 1
    with Session(env.engine) as db:
        learnt = db.scalars(select(FeaturesProfile).where(FeaturesProfile.anomaly_id == a4)).one()
        assert [s.timestamp for s in learnt.series] == kept[:, 0].astype(int).tolist()
        assert (
            db.scalars(select(FeaturesProfile).where(FeaturesProfile.anomaly_id == a5)).all() == []
        )
        assert {e.anomaly_id for e in db.scalars(select(LearnEvaluated))} == {a4, a5}
    assert env.counts["learn.refused"] == 1


def _trim(env: Env, oldest: int) -> None:
    """Fold the raw points into the rollups (horizon), then drop those before
    ``oldest`` (roomba): the history still has them, at 600 s."""
    Rollups(env.store, env.settings.mirage.rollup_resolution).roll_up(
        [METRIC], now=oldest + DAY, retention=30 * DAY, lag=0
    )
    s = env.store.read(METRIC)
    keep = s.timestamps >= oldest
    env.store.delete(METRIC)
    env.store.append_grouped({METRIC: (s.timestamps[keep].tolist(), s.values[keep].tolist())})


def test_a_longer_profile_is_learnt_at_the_history_resolution_or_refused(env):
    """A 2-day parent (> [skyline] full_duration) made from the 600 s history grows a
    600 s child; a 2-day parent of raw 60 s points cannot (refused, counted)."""
    for m in ("web.hist", "web.rawlong"):
        seed(env.store, metric=m)
    hist = env.profile(history_window(env.history, "web.hist", DAYS[3], 2 * DAY), DAYS[3],
                       2 * DAY, "web.hist")  # fmt: skip
    env.profile(raw_window(env.store, "web.rawlong", DAYS[3], 2 * DAY), DAYS[3], 2 * DAY,
                "web.rawlong")  # fmt: skip
    with Session(env.engine) as db:
        a_hist = add_anomaly(db, DAYS[4], "h4", "web.hist")
        add_anomaly(db, DAYS[4], "r4", "web.rawlong")
    assert env.learner().run_pass(DAYS[4] + 3700) == 1
    with Session(env.engine) as db:
        (child,) = db.scalars(select(FeaturesProfile).where(FeaturesProfile.parent_id.is_not(None)))
        assert (child.parent_id, child.anomaly_id, child.full_duration) == (hist, a_hist, 2 * DAY)
        assert child.resolution == env.settings.mirage.rollup_resolution == 600
    assert env.counts["learn.refused"] == 1


def test_passes_are_bounded_and_evaluations_persist(make_settings, db_url, redis_client):
    env = Env(make_settings, db_url, redis_client, SKYLINE__IONOSPHERE__LEARN_MAX_PER_PASS="1")
    seed(env.store, shift_from=DAYS[5] - 4 * 3600)
    env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    with Session(env.engine) as db:
        for k in (3, 4, 5):
            add_anomaly(db, DAYS[k], f"a{k}")
    learner = env.learner()
    now = DAYS[5] + 3700
    assert [learner.run_pass(now) for _ in range(4)] == [1, 1, 0, 0]  # one anomaly a pass
    different = env.counts["learn.too_different"]  # a5, once per candidate parent
    assert different >= 1 and env.counts["learn.pass_cut"] >= 2
    restarted = env.learner()  # a new process: nothing is evaluated again
    assert restarted.run_pass(now) == 0
    assert env.counts["learn.too_different"] == different
    env.engine.dispose()


def test_an_outage_mid_learning_leaves_the_anomaly_for_the_next_pass(env, monkeypatch):
    seed(env.store)
    env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    with Session(env.engine) as db:
        add_anomaly(db, DAYS[3], "a3")
    learner = env.learner()
    real = learner._learn_one

    def down(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("server has gone away"))

    monkeypatch.setattr(learner, "_learn_one", down)  # a mock forcing the failure
    with pytest.raises(sqlalchemy.exc.OperationalError):
        learner.run_pass(DAYS[3] + 3700)
    monkeypatch.setattr(learner, "_learn_one", real)
    assert learner.run_pass(DAYS[3] + 3700) == 1


def test_a_time_budget_cuts_a_pass(make_settings, db_url, redis_client):
    env = Env(make_settings, db_url, redis_client, SKYLINE__IONOSPHERE__LEARN_TIME_BUDGET="0.001")
    seed(env.store)
    env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    with Session(env.engine) as db:
        for k in (3, 4):
            add_anomaly(db, DAYS[k], f"a{k}")
    learner = env.learner()
    assert learner.run_pass(DAYS[4] + 3700) <= 1  # the first evaluation alone exceeds 1 ms
    assert env.counts["learn.pass_cut"] == 1
    env.engine.dispose()


def test_no_learning_at_max_generations_zero(make_settings, db_url, redis_client):
    env = Env(make_settings, db_url, redis_client, SKYLINE__IONOSPHERE__MAX_GENERATIONS="0")
    seed(env.store)
    env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    with Session(env.engine) as db:
        add_anomaly(db, DAYS[3], "a3")
    assert env.learner().run_pass(DAYS[3] + 3700) == 0
    env.engine.dispose()


def test_origin_features_are_kept_in_a_bounded_lru(env, monkeypatch):
    monkeypatch.setattr(learn, "ORIGINS_KEPT", 1)
    for k, metric in enumerate(("web.one", "web.two")):
        seed(env.store, metric=metric)
        env.profile(raw_window(env.store, metric, DAYS[2], DAY), DAYS[2], metric=metric)
        with Session(env.engine) as db:
            add_anomaly(db, DAYS[3], f"o{k}", metric)
    learner = env.learner()
    assert learner.run_pass(DAYS[3] + 3700) == 2
    assert len(learner._origin) == 1


def _drop_before(env: Env, oldest: int) -> None:
    """The history no longer reaches before ``oldest`` (rollup_retention passed)."""
    s = env.store.read(METRIC)
    keep = s.timestamps >= oldest
    env.store.delete(METRIC)
    env.store.append_grouped({METRIC: (s.timestamps[keep].tolist(), s.values[keep].tolist())})


def _evaluated(env: Env) -> set[int]:
    with Session(env.engine) as db:
        return {e.anomaly_id for e in db.scalars(select(LearnEvaluated))}


def test_origin_features_are_stored_while_its_window_is_whole(env):
    """An origin older than rollup_retention - learn window: its 2-day window is cut
    at its start by then, but its features were stored by the first pass after it
    was made, so a later process still learns from it; an anomaly whose own window
    is cut is refused and not marked evaluated."""
    seed(env.store)
    origin = env.profile(raw_window(env.store, METRIC, DAYS[2], DAY), DAYS[2])
    assert env.learner().run_pass(DAYS[2] + 3700) == 0  # no anomaly: the origin is stored
    with Session(env.engine) as db:
        stored = db.scalars(select(LearnOriginFeature).where(
            LearnOriginFeature.profile_id == origin)).all()  # fmt: skip
        assert stored and {s.duration for s in stored} == {2 * DAY}
        cut = add_anomaly(db, DAYS[2] + 3 * 3600, "cut")
        whole = add_anomaly(db, DAYS[4], "a4")
    _drop_before(env, DAYS[1])  # the origin's window (DAYS[0], DAYS[2]] is half gone
    assert env.learner().run_pass(DAYS[4] + 3700) == 1  # a new process: from SQL
    with Session(env.engine) as db:
        (child,) = db.scalars(select(FeaturesProfile).where(FeaturesProfile.parent_id == origin))
        assert child.anomaly_id == whole
    assert env.counts["learn.refused"] == 1 and "learn.too_different" not in env.counts
    assert "errors.learn" not in env.counts
    assert _evaluated(env) == {whole}  # the cut one is not marked evaluated
    assert cut not in _evaluated(env)


def test_an_origin_never_whole_refuses_without_marking(env):
    seed(env.store)
    series = raw_window(env.store, METRIC, DAYS[2], DAY)
    _drop_before(env, DAYS[1])  # made after its window was cut
    origin = env.profile(series, DAYS[2])
    with Session(env.engine) as db:
        add_anomaly(db, DAYS[4], "a4")
    learner = env.learner()
    assert learner.run_pass(DAYS[4] + 3700) == 0
    assert env.counts["learn.refused"] == 1 and "learn.too_different" not in env.counts
    assert learner.run_pass(DAYS[4] + 3700) == 0  # left out for REFUSED_RETRY
    assert env.counts["learn.refused"] == 1
    assert env.learner().run_pass(DAYS[4] + 3700) == 0  # a restart tries it again
    assert env.counts["learn.refused"] == 2
    assert _evaluated(env) == set()
    with Session(env.engine) as db:
        assert db.scalars(select(LearnOriginFeature).where(
            LearnOriginFeature.profile_id == origin)).all() == []  # fmt: skip
