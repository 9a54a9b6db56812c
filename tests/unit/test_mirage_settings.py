"""[mirage] settings that must agree with each other: a history fetch must end before
its check would expire."""

from __future__ import annotations

import pytest

from skyline.settings import SettingsError, load_settings


def test_a_fetch_that_could_outlast_max_check_age_is_refused_in_one_line(tmp_path):
    conf = tmp_path / "skyline.conf"
    conf.write_text('[mirage]\ngraphite_url = "http://g:8080"\nremote_read_timeout = 100.0\n'
                    "remote_connect_timeout = 5.0\nremote_attempts = 3\n")  # fmt: skip
    with pytest.raises(SettingsError) as err:
        load_settings(conf, env={})
    message = str(err.value)
    assert "\n" not in message
    assert "+ backoffs = 315.6 s must be less than max_check_age 300 s" in message, message


def test_the_limit_applies_only_with_a_remote_source_and_defaults_fit(tmp_path):
    conf = tmp_path / "skyline.conf"
    conf.write_text("[mirage]\nremote_read_timeout = 100.0\n")
    assert load_settings(conf, env={}).mirage.remote_read_timeout == 100.0
    cfg = load_settings(None, env={"SKYLINE__MIRAGE__GRAPHITE_URL": "http://g"}).mirage
    assert cfg.graphite_url == "http://g" and cfg.max_check_age == 300


def test_the_backoffs_between_tries_count_too(tmp_path):
    """3 x (5 + 94.8) = 299.4 s of tries fits 300 s; with the 0.2 + 0.4 s backoffs it
    does not."""
    conf = tmp_path / "skyline.conf"
    conf.write_text('[mirage]\ngraphite_url = "http://g:8080"\nremote_read_timeout = 94.8\n')
    with pytest.raises(SettingsError) as err:
        load_settings(conf, env={})
    assert "+ backoffs = 300 s must be less than max_check_age 300 s" in str(err.value)
    conf.write_text('[mirage]\ngraphite_url = "http://g:8080"\nremote_read_timeout = 94.5\n')
    assert load_settings(conf, env={}).mirage.remote_read_timeout == 94.5
