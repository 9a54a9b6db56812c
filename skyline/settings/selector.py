"""Label selectors in Prometheus syntax: ``http_requests_total{job="api",code=~"5.."}``.

A selector is an optional metric name followed by an optional brace list of
matchers ``label OP "value"``, OP one of ``=`` ``!=`` ``=~`` ``!~``.  Values are
double-, single- or back-quoted strings (``\\"``, ``\\\\``, ``\\n``, ``\\t`` escapes in
the first two); a trailing comma is allowed.  As in Prometheus:

- the metric name is the matcher ``__name__="name"``; a Skyline dotted name
  (``demo.shop.web.requests_per_s``) is accepted as a name too;
- a regex is anchored at both ends (``code=~"5.."`` does not match ``"1500"``);
- a label the series does not have has the value ``""``, so ``env=""`` selects the
  series without ``env`` and ``env!=""`` those with it.

Regexes use Python's ``re`` (not RE2: no ``\\C``; possessive and look-around
extras are accepted).  Bounded input: at most ``MAX_LENGTH`` characters and
``MAX_MATCHERS`` matchers.  Every malformed selector raises ``SelectorError``
with a reason saying what and where, which the API answers as a 400.

``re`` backtracks: ``check_backtracking`` refuses the regexes it could take too long
on (``skyline.settings.regexes.check_cost``) in the selectors web requests send (those
of the settings are the operator's own).

It lives in settings because ``[[alerts]]`` and ``[[boundary]]`` rules hold
selectors and are validated when the settings load; the store, the webapp and the
rule matching use the same parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from skyline.settings.regexes import RegexError, check_cost, compile_regex

MAX_LENGTH = 4096
MAX_MATCHERS = 32
OPS = ("=~", "!~", "!=", "=")

_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.\-]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


class SelectorError(ValueError):
    """A malformed selector; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    regex: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.regex is not None:
            hit = self.regex.fullmatch(have) is not None
            return hit if self.op == "=~" else not hit
        return (have == self.value) if self.op == "=" else (have != self.value)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True)
class Selector:
    matchers: tuple[Matcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return "{" + ",".join(str(m) for m in self.matchers) + "}"


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def fail(self, what: str) -> SelectorError:
        near = self.text[self.pos : self.pos + 20]
        where = f"at character {self.pos + 1}" + (f" ({near!r})" if near else " (the end)")
        return SelectorError(f"{what} {where}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group(0)

    def op(self) -> str:
        for op in OPS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        raise self.fail("expected one of =, !=, =~, !~")

    def string(self) -> str:
        quote = self.peek()
        if quote not in "\"'`" or not quote:
            raise self.fail("expected a quoted value")
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            self.pos += 1
            if c == quote:
                return "".join(out)
            if c == "\\" and quote != "`":
                if self.pos >= len(self.text):
                    break
                esc = self.text[self.pos]
                if esc not in _ESCAPES:
                    self.pos -= 1
                    raise self.fail(f"unknown escape \\{esc}")
                out.append(_ESCAPES[esc])
                self.pos += 1
            else:
                out.append(c)
        raise SelectorError(f"unterminated string: no closing {quote}")


def _matcher(label: str, op: str, value: str) -> Matcher:
    if op in ("=~", "!~"):
        return Matcher(label, op, value, _compile(value, label))
    return Matcher(label, op, value)


def _compile(value: str, label: str) -> re.Pattern[str]:
    try:
        return compile_regex(value)
    except RegexError as exc:
        raise SelectorError(f"invalid regex for {label}: {exc}") from None


def parse(text: str) -> Selector:
    """The selector ``text`` means; ``SelectorError`` saying why it is not one."""
    if not isinstance(text, str):
        raise SelectorError("a selector is a string")
    if len(text) > MAX_LENGTH:
        raise SelectorError(f"selector longer than {MAX_LENGTH} characters")
    if "\x00" in text:
        raise SelectorError("selector contains a NUL character")
    r = _Reader(text)
    r.skip_space()
    matchers: list[Matcher] = []
    name = r.take(_NAME)
    if name is not None:
        matchers.append(Matcher("__name__", "=", name))
    r.skip_space()
    if r.peek() == "{":
        r.pos += 1
        matchers.extend(_braces(r))
    elif name is None:
        raise r.fail("expected a metric name or {")
    r.skip_space()
    if r.pos != len(text):
        raise r.fail("unexpected text after the selector")
    if not matchers:
        raise SelectorError("empty selector: give a metric name or at least one matcher")
    if len(matchers) > MAX_MATCHERS:
        raise SelectorError(f"more than {MAX_MATCHERS} matchers")
    return Selector(tuple(matchers))


def _braces(r: _Reader) -> list[Matcher]:
    out: list[Matcher] = []
    while True:
        r.skip_space()
        if r.peek() == "}":
            r.pos += 1
            return out
        label = r.take(_LABEL)
        if label is None:
            raise r.fail("expected a label name or }")
        r.skip_space()
        op = r.op()
        r.skip_space()
        out.append(_matcher(label, op, r.string()))
        if len(out) > MAX_MATCHERS:
            raise SelectorError(f"more than {MAX_MATCHERS} matchers")
        r.skip_space()
        if r.peek() == ",":
            r.pos += 1
        elif r.peek() != "}":
            raise r.fail("expected , or }")


def is_selector(text: str) -> bool:
    """Whether a search string is meant as a selector (it has a brace list)."""
    return "{" in text


def check_backtracking(selector: Selector) -> None:
    """``SelectorError`` for a regex of ``selector`` that ``re`` could take too long on
    (``skyline.settings.regexes``)."""
    for m in selector.matchers:
        if m.regex is None:
            continue
        try:
            check_cost(m.value)
        except RegexError as exc:
            raise SelectorError(
                f"regex for {m.label} could take too long to match: {exc}"
            ) from None
