"""The SQL layer against real databases: MariaDB/MySQL (SKYLINE_TEST_MYSQL_URL) and SQLite.

Each MariaDB test gets its own throwaway database ``skyline_t_<random>``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skyline.db import (
    Anomaly,
    AnomalyVerdict,
    Base,
    Feature,
    FeaturesProfile,
    Label,
    Metric,
    Motif,
    ProfileFeature,
    ProfileMatch,
    ProfileSeries,
    SchemaOutOfDate,
    check_current,
    make_engine,
    schema_diff,
    upgrade,
    wait_for_db,
)
from tests.conftest import free_port
from tests.integration import conftest_db
from tests.integration.conftest_db import (
    TcpForwarder,
    mysql_server_url,
    run_sql_script,
    url_string,
)

# Fixtures shared with other SQL tests.
db_url = conftest_db.db_url
mysql_url = conftest_db.mysql_url
mysql_user = conftest_db.mysql_user

SQL_FILE = Path(__file__).resolve().parents[2] / "sql" / "skyline.sql"
LONG_NAME = "stats." + "x" * 1000 + ".cpu"  # 1010 ASCII characters
T0 = 4_102_444_800  # 2100-01-01: needs BIGINT


@pytest.mark.mysql
def test_mysql_upgrade_creates_exactly_the_models(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    with pytest.raises(SchemaOutOfDate, match="run `skyline db upgrade`"):
        check_current(engine)
    upgrade(mysql_url)
    assert schema_diff(engine) == []
    check_current(engine)
    with engine.connect() as conn:
        options = conn.execute(
            text(
                "SELECT table_name, engine, table_collation FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name <> 'alembic_version'"
            )
        ).all()
    engine.dispose()
    assert len(options) == len(Base.metadata.tables)
    assert {(e, c) for _, e, c in options} == {("InnoDB", "utf8mb4_bin")}


@pytest.mark.mysql
def test_mysql_schema_from_sql_file_equals_models(mysql_url: str) -> None:
    engine = make_engine(mysql_url)
    run_sql_script(engine, SQL_FILE.read_text())
    assert schema_diff(engine) == []
    check_current(engine)
    upgrade(mysql_url)  # a database made from the file is at head already
    engine.dispose()


def _populate(session: Session) -> int:
    metric = Metric(name=LONG_NAME)
    anomaly = Anomaly(
        metric=metric,
        timestamp=T0,
        value=123.456789,
        full_duration=86400,
        source="analyzer",
        host="host-1",
        algorithms_run=["histogram_bins", "first_hour_average", "stddev_from_average"],
        triggered_algorithms=["histogram_bins", "stddev_from_average"],
        scores={"histogram_bins": 0.875, "stddev_from_average": 3.25, "note": "ünïcødé ✓"},
        event_id="1700000000000-0",
    )
    anomaly.verdicts = [
        AnomalyVerdict(stage="analyzer", verdict="anomalous", detail={"consensus": 6}),
        AnomalyVerdict(stage="mirage", verdict="not_anomalous", reason="second order"),
    ]
    features = [Feature(id=i, name=f"value__feature_{i}") for i in (1, 2, 3)]
    profile = FeaturesProfile(
        metric=metric,
        anomaly_timestamp=T0,
        full_duration=86400,
        resolution=60,
        tsfresh_version="0.20.3",
        calc_time=1.5,
        features_count=3,
        features_sum=6.5,
        features=[ProfileFeature(feature_id=i, value=i + 0.5) for i in (3, 1, 2)],
        series=[ProfileSeries(timestamp=T0 - 60 * k, value=float(k)) for k in range(5)],
        motifs=[Motif(start_index=0, size=3, distance_max=20.0)],
    )
    session.add_all([anomaly, *features, profile])
    session.flush()
    profile.anomaly_id = anomaly.id
    session.add(Label(anomaly_id=anomaly.id, label="false_positive", note="deploy"))
    session.add(
        ProfileMatch(
            profile_id=profile.id, anomaly_id=anomaly.id, metric_timestamp=T0, match_type="motif"
        )
    )
    session.commit()
    return anomaly.id


def test_round_trip(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as session:
        anomaly_id = _populate(session)
    with Session(engine) as session:
        anomaly = session.get(Anomaly, anomaly_id)
        assert anomaly is not None
        assert anomaly.metric.name == LONG_NAME
        assert anomaly.metric.learn_full_duration_days == 30
        assert anomaly.metric.max_percent_diff_from_origin == 7.0
        assert anomaly.metric.inactive is False
        assert (anomaly.timestamp, anomaly.value, anomaly.verdict) == (T0, 123.456789, "pending")
        assert anomaly.triggered_algorithms == ["histogram_bins", "stddev_from_average"]
        assert anomaly.scores["note"] == "ünïcødé ✓"
        assert anomaly.scores["stddev_from_average"] == 3.25
        assert [(v.stage, v.verdict) for v in anomaly.verdicts] == [
            ("analyzer", "anomalous"),
            ("mirage", "not_anomalous"),
        ]
        assert anomaly.verdicts[0].detail == {"consensus": 6}
        assert anomaly.verdicts[1].detail is None
        profile = session.scalars(select(FeaturesProfile)).one()
        assert profile.enabled is True and profile.generation == 0
        assert profile.anomaly_id == anomaly_id
        assert [(f.feature.name, f.value) for f in profile.features] == [
            ("value__feature_1", 1.5),
            ("value__feature_2", 2.5),
            ("value__feature_3", 3.5),
        ]
        assert [s.timestamp for s in profile.series] == [T0 - 60 * k for k in (4, 3, 2, 1, 0)]
        assert profile.motifs[0].size == 3
    engine.dispose()


def test_deleting_an_anomaly_cascades_or_detaches(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as session:
        anomaly_id = _populate(session)
    with engine.begin() as conn:
        conn.execute(delete(Anomaly).where(Anomaly.id == anomaly_id))
    with Session(engine) as session:
        assert session.scalars(select(AnomalyVerdict)).all() == []
        assert session.scalars(select(Label)).all() == []
        assert session.scalars(select(FeaturesProfile.anomaly_id)).one() is None
        assert session.scalars(select(ProfileMatch.anomaly_id)).one() is None
        assert len(session.scalars(select(ProfileSeries)).all()) == 5
    engine.dispose()


def test_integrity_is_enforced(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    row = {
        "metric_id": 999_999,
        "timestamp": T0,
        "value": 1.0,
        "full_duration": 86400,
        "source": "analyzer",
        "host": "",
        "algorithms_run": [],
        "triggered_algorithms": [],
        "scores": {},
        "verdict": "pending",
        "created_at": T0,
        "event_id": "e-1",
    }
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Anomaly), row)
    with engine.begin() as conn:
        conn.execute(insert(Metric), {"id": 7, "name": "a.b", "created_at": T0})
        conn.execute(insert(Anomaly), {**row, "metric_id": 7})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # event_id is the hand-off key
        conn.execute(insert(Anomaly), {**row, "metric_id": 7})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Metric), {"name": "a.b", "created_at": T0})
    engine.dispose()


@pytest.mark.mysql
@pytest.mark.timeout(120)
def test_wait_for_db_retries_until_the_server_is_reachable(
    mysql_url: str, mysql_user: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    user, password = mysql_user
    server = mysql_server_url()
    port = free_port()
    url = make_url(mysql_url).set(host="127.0.0.1", port=port, username=user, password=password)
    forwarder = TcpForwarder(port, (server.host or "127.0.0.1", server.port or 3306))
    opener = threading.Timer(1.0, forwarder.start)
    give_up = threading.Event()
    safety = threading.Timer(60.0, give_up.set)
    log = logging.getLogger("test.db.wait_mysql")
    opener.start()
    safety.start()
    try:
        with caplog.at_level(logging.INFO, logger=log.name):
            engine = wait_for_db(url_string(url), backoff_max=2.0, stop=give_up, log=log)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT CURRENT_USER()")).scalar().startswith(user)
        engine.dispose()
    finally:
        safety.cancel()
        opener.join()
        forwarder.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "expected at least one retry warning while nothing listened"
    assert all(f"{user}:***@127.0.0.1:{port}" in w for w in warnings)
    assert forwarder.accepted >= 1
    assert password not in caplog.text
