"""[[boundary]] rules: validation at load (one line naming the key), matching with
excludes, the later-rule-wins precedence per algorithm, alert routing and dedupe keys,
[boundary_daemon] channel limits, and the in-memory tail's notion of "new"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skyline.alerting.dedupe import alert_key
from skyline.analysis.boundary.tail import Tail
from skyline.events.anomaly import AnomalyEvent
from skyline.events.boundary_rules import boundary_route, effective_rules
from skyline.settings import SettingsError, load_settings
from skyline.store.keys import RedisKeys
from skyline.store.timeseries import RECORD

OK = 'pattern = "a.b"\nalgorithm = "greater_than"\n'


def load(tmp_path, text: str):
    conf = tmp_path / "skyline.conf"
    conf.write_text(text)
    return load_settings(conf, env={})


def rules_conf(*bodies: str) -> str:
    return "".join(f"[[boundary]]\n{b}\n" for b in bodies)


INVALID = [
    ('pattern = "web[("\nalgorithm = "less_than"', "#2 pattern", "regular expression"),
    ('pattern = ""\nalgorithm = "less_than"', "#2 pattern", "every metric"),
    ('pattern = "x"\nalgorithm = "lessthan"', "#2 algorithm", "'less_than'"),
    ('pattern = "x"\nalgorithm = "less_than"\nlimit = nan', "#2 limit", "finite"),
    ('pattern = "x"\nalgorithm = "less_than"\nlimit = inf', "#2 limit", "finite"),
    ('pattern = "x"\nalgorithm = "less_than"\nlimit = "5"', "#2 limit", "number"),
    ('pattern = "x"\nalgorithm = "less_than"\nexpiry = -1', "#2 expiry", "greater than or equal"),
    (
        'pattern = "x"\nalgorithm = "less_than"\nalert_threshold = 0',
        "#2 alert_threshold",
        "greater than or equal to 1",
    ),
    ('pattern = "x"\nalgorithm = "less_than"\nchannels = []', "#2 channels", "at least 1"),
    (
        'pattern = "x"\nalgorithm = "less_than"\nchannels = ["sms"]',
        "#2 channels",
        "unknown channel",
    ),
    ('pattern = "x"\nalgorithm = "less_than"\nexcludes = ["a("]', "#2 excludes", "exclude 'a('"),
    (
        'pattern = "x"\nalgorithm = "less_than"\nmin_average = 3.0\nmin_average_seconds = 0',
        "#2 min_average_seconds",
        "min_average needs",
    ),  # fmt: skip
    ('pattern = "x"\nalgorithm = "less_than"\ntrigger = 3', "#2 trigger", "unknown key"),
    ('algorithm = "less_than"', "#2 pattern", "required key is missing"),
]


@pytest.mark.parametrize(("body", "where", "why"), INVALID)
def test_invalid_rules_give_one_line_naming_the_key(tmp_path, body, where, why):
    with pytest.raises(SettingsError) as err:
        load(tmp_path, rules_conf(OK, body))
    message = str(err.value)
    assert "\n" not in message
    assert f"[[boundary]] {where}" in message, message
    assert why in message, message


def test_invalid_channel_limit_names_the_key(tmp_path):
    with pytest.raises(SettingsError) as err:
        load(tmp_path, "[boundary_daemon.channel_limits.slack]\nlimit = 0\nperiod = 60\n")
    assert "[boundary_daemon] channel_limits.slack.limit" in str(err.value)


def test_defaults_and_a_full_rule(tmp_path):
    s = load(tmp_path, rules_conf(OK, 'pattern = "^db\\\\..*\\\\.free$"\nalgorithm = "less_than"\n'
                                      'limit = 5.5\nexpiry = 60\nmin_average = 1.0\n'
                                      'min_average_seconds = 300\nalert_threshold = 3\n'
                                      'channels = ["slack", "ops@example.com", "webhook-ops"]\n'
                                      'excludes = ["db.test"]'))  # fmt: skip
    limits = s.boundary_daemon.channel_limits
    assert {k: (v.limit, v.period) for k, v in limits.items()} == {
        "smtp": (100, 60), "pagerduty": (15, 1800), "slack": (30, 1800)}  # fmt: skip
    rule = s.boundary[1]
    assert (rule.limit, rule.alert_threshold, rule.excludes) == (5.5, 3, ["db.test"])
    assert s.boundary[0].channels == ["smtp"] and s.boundary[0].alert_threshold == 1


def test_a_channel_limit_table_replaces_that_channels_default_only(tmp_path):
    s = load(tmp_path, "[boundary_daemon.channel_limits.slack]\nlimit = 3\nperiod = 60\n"
                       "[boundary_daemon.channel_limits.webhook-ops]\nlimit = 1\nperiod = 10\n")  # fmt: skip
    limits = {k: (v.limit, v.period) for k, v in s.boundary_daemon.channel_limits.items()}
    assert limits == {"smtp": (100, 60), "pagerduty": (15, 1800), "slack": (3, 60),
                      "webhook-ops": (1, 10)}  # fmt: skip


def settings_with(tmp_path, *bodies: str):
    return load(tmp_path, rules_conf(*bodies))


def test_later_rule_wins_per_algorithm_and_other_algorithms_still_apply(tmp_path):
    s = settings_with(
        tmp_path,
        'pattern = "stats"\nalgorithm = "greater_than"\nlimit = 100.0\nchannels = ["smtp"]',
        'pattern = "stats"\nalgorithm = "less_than"\nlimit = 1.0\nchannels = ["smtp"]',
        'pattern = "stats.web.errors"\nalgorithm = "greater_than"\nlimit = 5.0\n'
        'channels = ["slack"]',
    )
    web = effective_rules(s.boundary, "stats.web.errors")
    assert [(a.index, a.rule.algorithm, a.rule.limit) for a in web] == [
        (1, "less_than", 1.0), (2, "greater_than", 5.0)]  # fmt: skip
    other = effective_rules(s.boundary, "stats.db.errors")
    assert [(a.index, a.rule.limit) for a in other] == [(0, 100.0), (1, 1.0)]
    assert effective_rules(s.boundary, "carbon.agents") == []


def test_excludes_remove_a_metric_from_a_rule_and_an_earlier_rule_applies(tmp_path):
    s = settings_with(
        tmp_path,
        'pattern = "stats"\nalgorithm = "greater_than"\nlimit = 100.0',
        'pattern = "stats.web"\nalgorithm = "greater_than"\nlimit = 5.0\nexcludes = ["canary"]',
    )
    assert [a.index for a in effective_rules(s.boundary, "stats.web.requests")] == [1]
    assert [a.index for a in effective_rules(s.boundary, "stats.web.canary.requests")] == [0]


def test_patterns_keep_skylines_meanings(tmp_path):
    s = settings_with(
        tmp_path,
        'pattern = "^host[0-9]+\\\\.cpu$"\nalgorithm = "greater_than"',
        'pattern = "web.requests"\nalgorithm = "less_than"',
    )
    assert [a.index for a in effective_rules(s.boundary, "host12.cpu")] == [0]
    assert effective_rules(s.boundary, "hostX.cpu") == []
    assert [a.index for a in effective_rules(s.boundary, "dc1.web.api.requests")] == [1]


def event(metric: str, *triggered: str) -> AnomalyEvent:
    return AnomalyEvent(metric, 1_700_000_000, 1.0, "boundary", triggered, triggered)


def test_boundary_route_takes_the_triggered_algorithms_rules(tmp_path):
    s = settings_with(
        tmp_path,
        'pattern = "stats"\nalgorithm = "greater_than"\nexpiry = 60\nchannels = ["smtp"]',
        'pattern = "stats.web"\nalgorithm = "greater_than"\nexpiry = 900\n'
        'channels = ["slack", "pagerduty"]',
        'pattern = "stats"\nalgorithm = "less_than"\nexpiry = 120\nchannels = ["slack", "smtp"]',
    )
    r = boundary_route(s, event("stats.web.x", "greater_than"))
    assert r.channels == (("slack", 900, "stats.web"), ("pagerduty", 900, "stats.web"))
    assert r.mirage_hours is None
    r = boundary_route(s, event("stats.db.x", "less_than"))
    assert r.channels == (("slack", 120, "stats"), ("smtp", 120, "stats"))
    r = boundary_route(s, event("stats.web.x", "greater_than", "less_than"))
    assert [c for c, _, _ in r.channels] == ["slack", "pagerduty", "smtp"]
    assert r.channels[0][1] == 900  # slack: the first effective rule naming it
    assert not boundary_route(s, event("other", "greater_than")).alerting


def test_dedupe_key_includes_the_algorithm():
    keys = RedisKeys("p:")
    gt, lt = event("m", "greater_than"), event("m", "less_than")
    assert alert_key(keys, "slack", gt) != alert_key(keys, "slack", lt)
    assert alert_key(keys, "slack", gt) == "p:boundary:last:slack:greater_than:m"
    analyzer = AnomalyEvent("m", 1, 1.0, "analyzer", ("grubbs",), ("grubbs",))
    assert alert_key(keys, "slack", analyzer) == keys.alert_sent("slack", "m")


# --- Tail: which points are new ------------------------------------------------------------
def records(pairs) -> np.ndarray:
    rec = np.empty(len(pairs), RECORD)
    for i, (t, v) in enumerate(pairs):
        rec[i] = (t, v)
    return rec


def test_first_sight_judges_only_the_newest_point():
    tail = Tail()
    got = tail.ingest(records([(100, 1.0), (160, 2.0), (220, 3.0)]), True, 3600)
    assert list(got.new) == [2]


def test_after_a_restart_points_since_the_last_judged_are_new():
    tail = Tail(last_judged=160)
    got = tail.ingest(records([(100, 1.0), (160, 2.0), (220, 3.0), (280, 4.0)]), True, 3600)
    assert [int(tail.t[i]) for i in got.new] == [220, 280]


def test_increments_drop_nonfinite_and_late_points():
    tail = Tail()
    tail.ingest(records([(100, 1.0), (160, 2.0)]), True, 3600)
    tail.last_judged = 160
    got = tail.ingest(records([(220, np.nan), (150, 9.0), (280, np.inf), (340, 5.0)]), False, 3600)
    assert (got.nonfinite, got.late) == (2, 1)
    assert [int(tail.t[i]) for i in got.new] == [340]
    assert tail.t.tolist() == [100, 160, 340] and tail.v.tolist() == [1.0, 2.0, 5.0]


def test_the_tail_keeps_its_window_but_at_least_64_points():
    tail = Tail()
    tail.ingest(records([(60 * i + 60, float(i)) for i in range(200)]), True, 600)
    assert len(tail.t) == 64
    tail = Tail()
    tail.ingest(records([(i + 1, float(i)) for i in range(2000)]), True, 600)
    assert len(tail.t) == 600 and tail.t[-1] == 2000


def test_the_documented_example_parses_and_means_what_docs_say(tmp_path):
    doc = (Path(__file__).parents[2] / "docs" / "boundary.md").read_text()
    excerpt = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    s = load(tmp_path, excerpt)
    assert len(s.boundary) == 4

    def judged_by(metric: str) -> list[tuple[int, float]]:
        return [(a.index, a.rule.limit) for a in effective_rules(s.boundary, metric)]

    assert judged_by("stats.queues.payments.depth") == [(1, 500.0)]
    assert judged_by("stats.queues.orders.depth") == [(0, 10000.0)]
    assert judged_by("stats.queues.batch.depth") == []
    assert [a.index for a in effective_rules(s.boundary, "stats.web.api.requests")] == [3]
    assert effective_rules(s.boundary, "stats.web.api.v2.requests") == []
