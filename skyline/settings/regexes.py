r"""Regular expressions that come from outside (a web request, an API call, an ingest
header): compiled without crashing, and refused when ``re`` could take too long on them.

``re.compile`` raises more than ``re.error``: ``a{99999999999}`` an ``OverflowError``,
600 nested parentheses a ``RecursionError``.  ``compile_regex`` turns every one into a
``RegexError`` (a ``ValueError`` whose message is the reason shown to the user).

``re`` backtracks: ``(.*.*)*z`` takes hours on a 20-character name, ``(x|x)*y`` doubles
its time with every character, ``.*t.*t.*t.*z`` takes a minute on a 1024-character
one, holding the GIL.  ``check_cost`` refuses such regexes: at most
``MAX_OPEN_REPEATS`` open-ended repetitions, none inside another repetition, at most
``MAX_PATHS`` ways through the alternatives, no back-references.  A trailing ``.*`` or
``.+`` is not counted: once the rest has matched it takes what is left and cannot fail
(``^prod\..*\.web\d+\..*`` has two that count).  Regexes the operator
writes in the settings are theirs and not checked.
"""

from __future__ import annotations

import re
import re._constants as sre  # type: ignore[import-not-found]  # sre_constants is deprecated
import re._parser as sre_parse  # type: ignore[import-not-found]  # sre_parse is deprecated
from functools import lru_cache
from typing import Any

MAX_OPEN_REPEATS = 2  # O(n**2) steps on an n-character name at worst
MAX_PATHS = 64
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
# what re.compile and its parser raise on a pattern, besides re.error
_COMPILE_ERRORS = (re.error, OverflowError, RecursionError, ValueError)


class RegexError(ValueError):
    """A regex that cannot be used; the message says why."""


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """``re.compile(pattern)``; ``RegexError`` for every way that can fail."""
    try:
        return re.compile(pattern)
    except RecursionError:
        raise RegexError("nested too deeply") from None
    except OverflowError:
        raise RegexError("a repetition count too large") from None
    except _COMPILE_ERRORS as exc:
        raise RegexError(str(exc)) from None


def check_cost(pattern: str) -> None:
    """``RegexError`` when ``re`` could take too long to match ``pattern`` (which
    compiles; see the module's docstring)."""
    try:
        repeats, paths = _cost(_without_open_end(list(sre_parse.parse(pattern))))
    except _COMPILE_ERRORS as exc:  # compile_regex says why, when it is called first
        raise RegexError(str(exc) or type(exc).__name__) from None
    if repeats > MAX_OPEN_REPEATS:
        raise RegexError(f"more than {MAX_OPEN_REPEATS} of *, + and {{m,n}}")
    if paths > MAX_PATHS:
        raise RegexError(f"more than {MAX_PATHS} ways through its | and ?")


def untrusted(pattern: str) -> re.Pattern[str]:
    """A regex from outside, compiled and checked: ``RegexError`` saying why not."""
    regex = compile_regex(pattern)
    try:
        check_cost(pattern)
    except RegexError as exc:
        raise RegexError(f"could take too long to match: {exc}") from None
    return regex


def check_name_list(entries: list[str]) -> list[str]:
    """A skip / do_not_skip list (``skyline.store.name_filter``): every ``re:`` entry
    must compile (the operator's own regexes: their cost is not checked)."""
    for entry in entries:
        if entry.startswith("re:"):
            try:
                compile_regex(entry[3:])
            except RegexError as exc:
                raise ValueError(f"{entry!r} is not a regular expression: {exc}") from None
    return entries


def _without_open_end(items: list[Any]) -> list[Any]:
    """The parsed regex without its trailing anchors and ``.*`` / ``.+``."""
    while items and (items[-1][0] is sre.AT or _any_run(items[-1])):
        items.pop()
    return items


def _any_run(item: Any) -> bool:
    op, av = item
    return (
        op in _REPEATS
        and av[0] <= 1
        and av[1] == sre.MAXREPEAT
        and list(av[2]) == [(sre.ANY, None)]
    )


def _cost(items: Any) -> tuple[int, int]:
    """(open-ended repetitions, ways through the alternatives) of a parsed regex;
    RegexError for a repetition of a repetition or of alternatives, and for a
    back-reference, whose cost has no such bound."""
    repeats, paths = 0, 1
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            inner = _cost(body)
            if high > 1 and inner != (0, 1):
                raise RegexError("a group that repeats or alternates is repeated")
            r, p = (inner[0], inner[1] + 1) if high <= 1 else (int(low != high), 1)
        elif op is sre.BRANCH:
            costs = [_cost(b) for b in av[1]]
            r, p = max(c[0] for c in costs), sum(c[1] for c in costs)
        elif op is sre.SUBPATTERN:
            r, p = _cost(av[3])
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            r, p = _cost(av[1])
        elif op is sre.ATOMIC_GROUP:
            r, p = _cost(av)
        elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise RegexError("a back-reference")
        else:
            r, p = 0, 1
        repeats, paths = repeats + r, min(paths * p, MAX_PATHS + 1)
    return repeats, paths
