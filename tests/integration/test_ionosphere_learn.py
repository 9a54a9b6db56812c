"""Learning on real SQL (SQLite and MariaDB) and Redis, with a test history source:
a learn profile grows generation-1 children from later unmatched anomalies within
max_percent_diff_from_origin, never beyond max_generations."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skyline.db import make_engine, migrate
from skyline.db.models import Anomaly, FeaturesProfile, ProfileMatch
from skyline.db.repo import get_or_create_metric
from skyline.ionosphere.learn import Learner, limits
from skyline.ionosphere.profiles import create_profile
from skyline.redis_keys import RedisKeys
from tests.integration import conftest_db

db_url = conftest_db.db_url
mysql_url = conftest_db.mysql_url
DAY = 86400
T_START = 1_699_920_000  # midnight UTC
METRIC = "web.learn"


def history_of(days: int = 7, shift_from: int | None = None):
    rng = np.random.default_rng(11)
    t = T_START + 60 * np.arange(days * 1440)
    tod = (t - T_START) % DAY
    v = 100 + 20 * np.sin(2 * np.pi * tod / DAY) + rng.normal(0, 1, len(t))
    v += np.where((tod >= 6 * 3600 - 1800) & (tod <= 6 * 3600), 40.0, 0.0)
    if shift_from is not None:
        v[t > shift_from] *= 3  # a level shift: not what the origin looked like

    def history(metric: str, start: int, end: int) -> np.ndarray:
        keep = (t > start) & (t <= end)
        return np.column_stack([t[keep].astype(float), v[keep]])

    return history


def add_anomaly(db: Session, ts: int, name: str) -> int:
    metric = get_or_create_metric(db, METRIC)
    row = Anomaly(metric_id=metric.id, timestamp=ts, value=1.0, full_duration=DAY,
                  source="analyzer", event_id=name, verdict="sent_to_alerters")  # fmt: skip
    db.add(row)
    db.commit()
    return row.id


@pytest.mark.parametrize("max_generations", [1, 2])
def test_learning_within_generation_limits(make_settings, db_url, redis_client, max_generations):
    settings = make_settings(SKYLINE__DATABASE__URL=db_url,
                             SKYLINE__IONOSPHERE__LEARN_FULL_DURATION_DAYS="2",
                             SKYLINE__IONOSPHERE__LEARN_LOOKBACK=str(5 * DAY),
                             SKYLINE__IONOSPHERE__MAX_GENERATIONS=str(max_generations))  # fmt: skip
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    keys = RedisKeys(settings.redis.prefix)
    day = [T_START + k * DAY + 6 * 3600 for k in range(7)]  # the bump ends at 06:00 daily
    shifted = day[6] - 4 * 3600
    history = history_of(shift_from=shifted)
    origin = create_profile(engine, redis_client, keys, settings, metric=METRIC,
                            series=history(METRIC, day[2] - DAY, day[2]), anomaly_timestamp=day[2],
                            full_duration=DAY, learn=True)  # fmt: skip
    with Session(engine) as db:
        first, second = add_anomaly(db, day[3], "a3"), add_anomaly(db, day[4], "a4")
        matched = add_anomaly(db, day[5], "a5")
        db.add(ProfileMatch(profile_id=origin, event_id="a5", metric_timestamp=day[5],
                            match_type="features"))  # fmt: skip
        different = add_anomaly(db, day[6], "a6")
        db.commit()
        assert limits(get_or_create_metric(db, METRIC), settings.ionosphere)["max_generations"] == (
            max_generations
        )
    counts: dict[str, int] = {}
    learner = Learner(engine, redis_client, keys, settings, history,
                      lambda n: counts.__setitem__(n, counts.get(n, 0) + 1))  # fmt: skip
    assert learner.run_pass(day[6] + 3700) == 2
    assert learner.run_pass(day[6] + 3700) == 0  # nothing learnt twice
    with Session(engine) as db:
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
    assert counts.get("learn.too_different", 0) >= 1
    assert redis_client.get(keys.profiles_version(METRIC)) == b"3"
    engine.dispose()


def test_no_learning_at_max_generations_zero(make_settings, db_url, redis_client):
    settings = make_settings(SKYLINE__DATABASE__URL=db_url,
                             SKYLINE__IONOSPHERE__LEARN_FULL_DURATION_DAYS="2",
                             SKYLINE__IONOSPHERE__MAX_GENERATIONS="0")  # fmt: skip
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    keys = RedisKeys(settings.redis.prefix)
    history = history_of()
    day = [T_START + k * DAY + 6 * 3600 for k in range(7)]
    create_profile(engine, redis_client, keys, settings, metric=METRIC,
                   series=history(METRIC, day[2] - DAY, day[2]), anomaly_timestamp=day[2],
                   full_duration=DAY, learn=True)  # fmt: skip
    with Session(engine) as db:
        add_anomaly(db, day[3], "a3")
    learner = Learner(engine, redis_client, keys, settings, history)
    assert learner.run_pass(day[3] + 3700) == 0
    engine.dispose()
