"""Regexes from outside (skyline.settings.regexes): every way ``re.compile`` fails is a
``RegexError`` with a reason, and the patterns ``re`` could backtrack on for ever are
refused, driven by tables of hostile and of ordinary patterns.  The [[alerts]] pattern
matching (skyline.events.rules) takes a pattern that fails to compile as plain text."""

from __future__ import annotations

import pytest

from skyline.events.rules import matches, regex_cost_error
from skyline.settings.regexes import RegexError, check_cost, compile_regex, untrusted

DO_NOT_COMPILE = [
    ("a{99999999999}", "a repetition count too large"),
    ("(" * 600 + ")" * 600, "nested too deeply"),
    ("go_(", "missing ), unterminated subpattern"),
    ("*", "nothing to repeat"),
    ("a{2,1}", "min repeat greater than max repeat"),
    ("\\", "bad escape (end of pattern)"),
]

COSTLY = [
    ("(a|a)*b", "a group that repeats or alternates is repeated"),
    ("(.*.*)*z", "a group that repeats or alternates is repeated"),
    ("(x+)+y", "a group that repeats or alternates is repeated"),
    (".*t.*t.*t.*z", "more than 2 of *, + and {m,n}"),
    ("^prod\\..*\\.web\\d+\\..*x", "more than 2 of *, + and {m,n}"),  # not trailing
    ("(a)\\1", "a back-reference"),
    ("(aa|bb)(cc|dd)(ee|ff)(gg|hh)(ii|jj)(kk|ll)(mm|nn)", "more than 64 ways"),
]

CHEAP = ["web.*", "^api\\.(get|post)\\..*latency$", "go_gc_.*", "[0-9]{3}", "a.*b", "x{2,5}",
         "(?:ab)?c", "host-[a-z]+\\.cpu",
         "^prod\\..*\\.web\\d+\\..*", ".*a.*b.*$", "a.+b.*c.+"]  # a trailing .* or .+ is free  # fmt: skip


@pytest.mark.parametrize(("pattern", "reason"), DO_NOT_COMPILE)
def test_every_compile_failure_is_a_regex_error_with_its_reason(pattern, reason):
    with pytest.raises(RegexError) as caught:
        compile_regex(pattern)
    assert reason in str(caught.value)
    with pytest.raises(RegexError):
        untrusted(pattern)


@pytest.mark.parametrize(("pattern", "reason"), COSTLY)
def test_costly_regexes_are_refused(pattern, reason):
    compile_regex(pattern)  # they compile
    with pytest.raises(RegexError) as caught:
        check_cost(pattern)
    assert reason in str(caught.value)
    with pytest.raises(RegexError, match="could take too long to match"):
        untrusted(pattern)
    assert regex_cost_error(pattern) is not None


@pytest.mark.parametrize("pattern", CHEAP)
def test_ordinary_regexes_pass(pattern):
    assert untrusted(pattern).pattern == pattern
    assert regex_cost_error(pattern) is None


@pytest.mark.parametrize(("pattern", "reason"), DO_NOT_COMPILE)
def test_alert_patterns_that_do_not_compile_match_as_text(pattern, reason):
    assert matches(pattern, f"x.{pattern}.y")
    assert not matches(pattern, "web.latency")
    assert regex_cost_error(pattern) is None  # no regex: nothing to backtrack
