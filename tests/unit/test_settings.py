"""Settings: defaults, TOML files, environment overrides, one-line errors, generated docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyline.cli.main import main as cli
from skyline.settings import SECTIONS, Settings, SettingsError, load_settings, redacted
from skyline.settings import doc as settings_doc

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "skyline.conf"
    p.write_text(text)
    return p


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert (
        s.horizon.pickle_port == 2024 and s.horizon.line_port == 2023 and s.horizon.udp_port == 2025
    )
    assert s.flux.port == 8000 and s.flux.statsd_port == 8125 and s.webapp.port == 1500
    assert s.horizon.bind == s.flux.bind == s.webapp.bind == "127.0.0.1"
    assert s.redis_embedded
    assert s.var_path == tmp_path / "var"
    assert s.database_url == f"sqlite:///{tmp_path / 'var' / 'skyline.db'}"


def test_file_values_and_rules(tmp_path):
    conf = write(
        tmp_path,
        """
[horizon]
pickle_port = 12024
[redis]
url = "redis://127.0.0.1:6379/3"
[[alerts]]
pattern = "stats.*"
channel = "slack"
mirage_hours = 168
[[boundary]]
pattern = "a.b"
algorithm = "less_than"
limit = 5
""",
    )
    s = load_settings(conf, env={})
    assert s.horizon.pickle_port == 12024
    assert not s.redis_embedded
    assert s.alerts[0].channel == "slack" and s.alerts[0].mirage_hours == 168
    assert s.alerts[0].expiration == 3600
    assert s.boundary[0].limit == 5.0


def test_environment_overrides_file(tmp_path):
    conf = write(tmp_path, "[horizon]\npickle_port = 12024\n")
    env = {"SKYLINE__HORIZON__PICKLE_PORT": "13024", "SKYLINE__THUNDER__INTERVAL": "2.5",
           "SKYLINE__REDIS__PREFIX": "other:", "SKYLINE__REDIS__EMBEDDED_PERSIST": "false"}  # fmt: skip
    s = load_settings(conf, env=env)
    assert s.horizon.pickle_port == 13024
    assert s.thunder.interval == 2.5
    assert s.redis.prefix == "other:"
    assert s.redis.embedded_persist is False


def test_conf_from_environment_variable(tmp_path):
    conf = write(tmp_path, "[webapp]\nport = 1600\n")
    assert load_settings(env={"SKYLINE_CONF": str(conf)}).webapp.port == 1600


def test_settings_are_frozen():
    s = load_settings(env={})
    with pytest.raises(Exception, match="frozen"):
        s.horizon.pickle_port = 1  # type: ignore[misc]


INVALID_FILES = [
    # (file text, substrings the one-line error must contain)
    (
        '[horizon]\npickle_port = "2024"\n',
        ["[horizon] pickle_port", "'2024'", "integer", "default is 2024"],
    ),
    ("[horizon]\npickle_port = 70000\n", ["[horizon] pickle_port", "70000", "65535"]),
    (
        "[horizon]\npickel_port = 2024\n",
        ["[horizon] pickel_port", "unknown key", "did you mean 'pickle_port'"],
    ),
    ("[horizn]\nbind = '0.0.0.0'\n", ["[horizn]", "unknown key", "did you mean 'horizon'"]),
    ('[skyline]\nlog_level = "LOUD"\n', ["log_level", "'LOUD'", "DEBUG"]),
    ("[skyline]\nfull_duration = 10\n", ["full_duration", "10", "greater than or equal to 600"]),
    ("[thunder]\ninterval = -1\n", ["[thunder] interval", "-1", "greater than 0"]),
    ("[redis]\nprefix = 'has space'\n", ["[redis] prefix", "has space"]),
    ("[[alerts]]\npattern = 'x'\n", ["[[alerts]] #1 channel", "required"]),
    (
        "[[alerts]]\npattern='x'\nchannel='smtp'\nexpiration=-5\n",
        ["[[alerts]] #1 expiration", "-5"],
    ),
    ("[[boundary]]\npattern='x'\nalgorithm='above'\n", ["[[boundary]] #1 algorithm", "'above'"]),
    # a window finer than the rollups is read from the raw series: it must fit in it
    (
        "[[alerts]]\npattern='x'\nchannel='smtp'\nmirage_hours=48\nmirage_resolution=60\n",
        ["pattern 'x'", "mirage_resolution 60 s is finer", "full_duration (86400 s)", "48 h"],
    ),
    (
        "[skyline]\nfull_duration = 3600\n",  # the demo's rule: a day in minutes
        ["pattern '^demo\\\\.'", "full_duration (3600 s)", "lower mirage_hours"],
    ),
    (
        "[[alerts]]\npattern='x'\nchannel='smtp'\nmirage_hours=24\nmirage_resolution=1200\n",
        ["mirage_resolution 1200 s is coarser than [mirage] rollup_resolution (600 s)"],
    ),
    (
        "[[alerts]]\npattern='x'\nchannel='smtp'\nmirage_hours=1\nmirage_resolution=5\n",
        ["[[alerts]] #1 mirage_resolution", "greater than or equal to 10"],
    ),
    ("[horizon\nbind = 1\n", ["not valid TOML", "line 1"]),
    ("horizon = 5\n", ["horizon", "5"]),
    # found by a hunt (2026-12-07): each was accepted, then misbehaved
    ('[redis]\nurl = "redis://127.0.0.1:6379/abc"\n', ["database after the host must be a number"]),
    ('[redis]\nurl = "redis://127.0.0.1:6379/11/extra"\n', ["must be a number"]),
    ('[redis]\nurl = "redis://"\n', ["no host"]),
    ('[redis]\nurl = "http://x"\n', ["redis://, rediss:// or unix://"]),
    ('[redis]\nurl = "unix:///tmp/r.sock?db=x"\n', ["'x' is not a database number"]),
    ("[analyzer]\ninterval = inf\n", ["[analyzer] interval", "finite number"]),
    ('[webapp]\nadmin_user = "a b"\n', ["[webapp] admin_user", "'a b'"]),
    ('[horizon]\nskip = ["stats", "re:(("]\n', ["[horizon] skip", "'re:(('", "not a regular"]),
    (
        '[analyzer]\ndo_not_skip = ["re:a{99999999999}"]\n',
        ["[analyzer] do_not_skip", "repetition count too large"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID_FILES)
def test_invalid_file_gives_one_line_naming_key_value_and_fix(tmp_path, text, expected):
    conf = write(tmp_path, text)
    with pytest.raises(SettingsError) as err:
        load_settings(conf, env={})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(conf))
    for part in expected:
        assert part in message, message


INVALID_ENV = [
    (
        {"SKYLINE__HORIZON__PICKLE_PORT": "abc"},
        ["SKYLINE__HORIZON__PICKLE_PORT", "'abc'", "integer"],
    ),
    (
        {"SKYLINE__HORIZON__PICKEL_PORT": "1"},
        ["SKYLINE__HORIZON__PICKEL_PORT", "did you mean 'pickle_port'"],
    ),
    ({"SKYLINE__HORIZON": "1"}, ["SKYLINE__HORIZON", "SKYLINE__<SECTION>__<KEY>"]),
    ({"SKYLINE__ALERTS__PATTERN": "x"}, ["SKYLINE__ALERTS__PATTERN", "cannot be overridden"]),
]


@pytest.mark.parametrize(("env", "expected"), INVALID_ENV)
def test_invalid_environment_override(tmp_path, env, expected):
    with pytest.raises(SettingsError) as err:
        load_settings(
            env={
                "SKYLINE_CONF": str(write(tmp_path, "[[alerts]]\npattern='a'\nchannel='b'\n")),
                **env,
            }
        )
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_missing_named_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path / "nope.conf", env={})
    with pytest.raises(SettingsError, match="not found"):
        load_settings(env={"SKYLINE_CONF": str(tmp_path / "nope.conf")})


def test_password_never_echoed_in_errors(tmp_path):
    conf = write(tmp_path, "[redis]\npassword = 12345\n")
    with pytest.raises(SettingsError) as err:
        load_settings(conf, env={})
    assert "12345" not in str(err.value)


def test_redacted_hides_secrets(tmp_path):
    conf = write(
        tmp_path,
        '[redis]\npassword = "hunter2"\nurl = "redis://u:pw1@h:6379/0?password=pw5"\n'
        '[database]\nurl = "mysql+pymysql://sky:pw2@db/skyline"\n'
        '[mirage]\ngraphite_url = "http://g:pw3@graphite:8080"\n'
        '[[vista]]\nname = "orders"\nkind = "sql"\nquery = "SELECT 1"\n'
        'url = "postgresql://app:pw4@pg/shop?sslmode=require&token=pw6"\n',
    )
    data = redacted(load_settings(conf, env={}))
    text = repr(data)
    for secret in ("hunter2", "pw1", "pw2", "pw3", "pw4", "pw5", "pw6"):
        assert secret not in text, secret
    assert data["database"]["url"] == "mysql+pymysql://sky:******@db/skyline"
    assert data["vista"][0]["url"] == "postgresql://app:******@pg/shop?sslmode=require&token=******"


def test_every_key_is_documented_with_a_description():
    for section, model in SECTIONS.items():
        for table, sub in settings_doc._tables(section, model):
            assert sub.__doc__, f"[{table}] has no docstring"
            for name, field in settings_doc._plain_fields(sub):
                assert field.description, f"[{table}] {name} has no description"


def test_nested_tables_from_file_and_environment(tmp_path):
    conf = write(
        tmp_path,
        '[alerters.slack]\ntoken = "xoxb-file"\n[alerters.webhooks.ops]\nurl = "http://h/x"\n'
        'headers = { "X-Team" = "sre" }\n',
    )
    s = load_settings(conf, env={"SKYLINE__ALERTERS__SLACK__CHANNEL": "#ops"})
    assert s.alerters.slack.token.get_secret_value() == "xoxb-file"
    assert s.alerters.slack.channel == "#ops"
    assert s.alerters.webhooks["ops"].headers == {"X-Team": "sre"}
    shown = settings_doc.render_toml(s, redacted(s))
    assert "xoxb-file" not in shown and "[alerters.webhooks.ops]" in shown


def test_shipped_conf_is_the_generated_template():
    shipped = (ROOT / "etc" / "skyline.conf").read_text()
    assert shipped == settings_doc.render_template(), (
        "regenerate: skyline config template > etc/skyline.conf"
    )


def test_configuration_doc_is_generated():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == settings_doc.render_markdown(), (
        "regenerate: python -m skyline.settings.doc > docs/configuration.md"
    )


def test_template_parses_to_the_defaults(tmp_path):
    conf = write(tmp_path, settings_doc.render_template())
    assert load_settings(conf, env={}) == load_settings(env={"SKYLINE_CONF": str(conf)})
    assert (
        load_settings(conf, env={}).model_dump()
        == load_settings(write(tmp_path, ""), env={}).model_dump()
    )


def test_cli_config_check_and_show(tmp_path, capsys):
    good = write(tmp_path, '[database]\nurl = "mysql+pymysql://u:secretpw@h/db"\n')
    assert cli(["config", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli(["--config", str(good), "config", "show"]) == 0
    shown = capsys.readouterr().out
    assert "secretpw" not in shown and "[horizon]" in shown and "pickle_port = 2024" in shown
    (tmp_path / "o").mkdir()
    other = write(tmp_path / "o", "[horizon]\npickle_port = 2345\n")  # show FILE shows FILE
    assert cli(["--config", str(good), "config", "show", str(other)]) == 0
    assert "pickle_port = 2345" in capsys.readouterr().out
    bad = tmp_path / "bad.conf"
    bad.write_text("[horizon]\npickle_port = 'x'\n")
    assert cli(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pickle_port" in err


REFERENCE_ORDER = [  # earthgecko's optimised settings.ALGORITHMS
    "histogram_bins",
    "first_hour_average",
    "stddev_from_average",
    "grubbs",
    "ks_test",
    "mean_subtraction_cumulation",
    "median_absolute_deviation",
    "stddev_from_moving_average",
    "least_squares",
]


def test_default_algorithms_are_the_registered_positions_in_the_reference_order():
    """The default ensemble comes from the algorithm registry (each module's position);
    the positions must give the reference's order, for the settings and the library."""
    from skyline.analysis.algorithms import CLASSIC_ORDER

    assert Settings().analyzer.algorithms == Settings().mirage.algorithms == REFERENCE_ORDER
    assert load_settings(env={}).analyzer.algorithms == list(CLASSIC_ORDER) == REFERENCE_ORDER


@pytest.mark.parametrize("section", ["ANALYZER", "MIRAGE"])
def test_an_unknown_algorithm_is_refused_naming_the_known_ones(section):
    env = {f"SKYLINE__{section}__ALGORITHMS": '["grubbs", "nonsense"]',
           f"SKYLINE__{section}__CONSENSUS": "1"}  # fmt: skip
    with pytest.raises(SettingsError, match=r"unknown algorithm 'nonsense'; known: .*grubbs"):
        load_settings(env=env)


def test_every_settings_error_is_reported_not_only_the_first(tmp_path):
    """Issue 15 item 12: an operator fixing a file should see all its problems at once."""
    conf = tmp_path / "skyline.conf"
    conf.write_text('[horizon]\nline_port = 0\nmax_age = "soon"\n[analyzer]\nbogus = 1\n')
    with pytest.raises(SettingsError) as err:
        load_settings(conf, env={"SKYLINE__FLUX__PORT": "99999"})
    lines = str(err.value).splitlines()
    assert len(lines) == 4, lines
    text = str(err.value)
    for fragment in ("line_port", "max_age", "bogus", "SKYLINE__FLUX__PORT"):
        assert fragment in text, fragment


def test_a_fine_mirage_window_longer_than_the_raw_day_is_fine_from_a_remote_source(tmp_path):
    text = ("[mirage]\nprometheus_url = 'http://prom:9090'\n"
            "[[alerts]]\npattern='x'\nchannel='smtp'\nmirage_hours=168\nmirage_resolution=60\n")  # fmt: skip
    settings = load_settings(write(tmp_path, text), env={})
    assert [(r.mirage_hours, r.mirage_resolution) for r in settings.alerts] == [(168, 60)]
    # the demo's rule, as shipped: a day in minutes
    assert load_settings(env={}).alerts[0].mirage_resolution == 60
