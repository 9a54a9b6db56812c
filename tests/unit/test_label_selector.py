"""Label selectors: what each valid one selects, and the reason each invalid one gives."""

from __future__ import annotations

import pytest

from skyline.settings.selector import (
    MAX_LENGTH,
    MAX_MATCHERS,
    SelectorError,
    check_backtracking,
    parse,
)

API = {"__name__": "http_requests_total", "job": "api", "code": "500", "instance": "10.0.0.1:80"}
WEB = {"__name__": "http_requests_total", "job": "web", "code": "200"}
DOTTED = {"__name__": "demo.shop.web.requests_per_s"}


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ('{job="api"}', [API]),
        ("http_requests_total", [API, WEB]),
        ('http_requests_total{code=~"5.."}', [API]),
        ('{code=~"5.."}', [API]),
        ('{code=~"50"}', []),  # anchored: 50 does not match 500
        ('{code!~"5.."}', [WEB, DOTTED]),
        ('{job!="api"}', [WEB, DOTTED]),
        ('{job=""}', [DOTTED]),  # absent label == ""
        ('{job!=""}', [API, WEB]),
        ('{instance="10.0.0.1:80",}', [API]),  # trailing comma
        ("{job='web'}", [WEB]),
        ("{job=`a\\pi`}", []),  # raw string: the backslash is kept
        ('  http_requests_total  { job = "api" , code = "500" }  ', [API]),
        ("demo.shop.web.requests_per_s", [DOTTED]),  # a dotted Skyline name
        ('{__name__=~"demo\\\\..*"}', [DOTTED]),
        ('{job="a\\"pi"}', []),
    ],
)
def test_selects(text: str, selected: list[dict[str, str]]) -> None:
    sel = parse(text)
    assert [s for s in (API, WEB, DOTTED) if sel.matches(s)] == selected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected a metric name or {"),
        ("   ", "expected a metric name or {"),
        ("{}", "empty selector"),
        ("{job}", "expected one of =, !=, =~, !~"),
        ('{job=="api"}', "expected a quoted value"),
        ("{job=api}", "expected a quoted value"),
        ('{job="api"', "expected , or }"),
        ('{job="api}', "unterminated string"),
        ('{job="api" code="5"}', "expected , or }"),
        ('{9job="x"}', "expected a label name or }"),
        ('{job="x"}}', "unexpected text after the selector"),
        ('{code=~"5(.."}', "invalid regex for code"),
        ('{code!~"["}', "invalid regex for code"),
        ('{job="\\q"}', "unknown escape \\q"),
        ('name{job="x"} extra', "unexpected text after the selector"),
        ("9name", "expected a metric name or {"),
        ('{job="a\x00"}', "NUL character"),
        ("{" + ",".join(f'l{i}="v"' for i in range(MAX_MATCHERS + 1)) + "}", "more than 32"),
        ('{job="' + "a" * MAX_LENGTH + '"}', "longer than 4096"),
        ('{,job="x"}', "expected a label name or }"),
        ("{job='x\"}", "unterminated string"),
    ],
)
def test_invalid_selectors_say_why(text: str, reason: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse(text)
    assert reason in str(err.value)


def test_position_is_named() -> None:
    with pytest.raises(SelectorError, match=r"at character 5"):
        parse('{job~"x"}')


def test_round_trip() -> None:
    sel = parse('up{job=~"a|b", x!="q\\"w"}')
    assert parse(str(sel)) == sel


# Regexes a web request may send: what people write passes, what would make Python's
# backtracking re run for hours on a name is refused before any name is matched.
CHEAP_REGEXES = ["5..", "web\\..*", ".+", "a|b", ".*api.*", "(500|502|503)",
                 "[a-z]+\\.[0-9]{1,3}", "(ab)?c*", "(?i)web.*", "(?=.*a).*", "a{3}(bc){2}",
                 "(a|b){3}", "a*+b*+"]  # fmt: skip
COSTLY_REGEXES = [
    ("(.*.*)*z", "repeats or alternates is repeated"),
    ("(a+)+z", "repeats or alternates is repeated"),
    ("(a|aa)*b", "repeats or alternates is repeated"),
    ("(?:.*){2}z", "repeats or alternates is repeated"),
    (".*t.*t.*t.*z", "more than 2 of *, +"),
    ("(.*)?(.*)?(.*)?z", "more than 2 of *, +"),
    ("a?" * 7 + "a" * 7, "more than 64 ways"),
    ("(ab|ba)" * 7, "more than 64 ways"),
    ("(.*)\\1", "back-reference"),
]


@pytest.mark.parametrize("regex", CHEAP_REGEXES)
def test_regexes_with_bounded_backtracking_pass(regex: str) -> None:
    check_backtracking(parse(f'{{job=~"{regex}"}}'.replace("\\", "\\\\")))


@pytest.mark.parametrize(("regex", "reason"), COSTLY_REGEXES)
def test_regexes_that_backtrack_without_bound_are_refused(regex: str, reason: str) -> None:
    for op in ("=~", "!~"):
        with pytest.raises(SelectorError) as err:
            check_backtracking(parse(f'up{{job{op}"{regex}"}}'.replace("\\", "\\\\")))
        assert "regex for job could take too long to match" in str(err.value)
        assert reason in str(err.value)
    parse(f'{{job=~"{regex}"}}'.replace("\\", "\\\\"))  # settings' selectors are not checked
