"""InfluxDB line protocol (``POST /flux/influx/write``) and telegraf JSON batches.

Names follow telegraf's Graphite template ``host.tags.measurement.field``: the
``host`` tag's value, the other tags' values ordered by tag key, the measurement,
then the field (a field called ``value`` is left out, as telegraf's Graphite
serializer does).  Inside each part ``.`` becomes ``_``, ``/`` becomes ``-`` and
any other character Skyline does not allow becomes ``_``.  String and boolean
fields are not stored: they are reported as rejects (``field_not_numeric``), so a
request that also held numbers is answered 207.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flask import Flask, Response, request

from skyline.ingest.flux import deadline
from skyline.ingest.flux.app import Context, prefixed
from skyline.ingest.flux.limits import HttpError, check_count
from skyline.ingest.flux.writer import Points, Rejects
from skyline.store.datapoint import to_float

_UNSAFE = re.compile(r"[^A-Za-z0-9+\-%_=:]")
PRECISION = {
    "ns": 1e-9,
    "n": 1e-9,
    "u": 1e-6,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
MAX_LINE_LENGTH = 65536  # longer lines are refused unparsed (a name is at most 1024)
_BOOLS = {"t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"}


def clean(part: str) -> str:
    return _UNSAFE.sub("_", part.replace(".", "_").replace("/", "-"))


def graphite_name(measurement: str, tags: dict[str, str], field: str) -> str:
    parts = []
    host = tags.get("host")
    if host:
        parts.append(clean(host))
    parts += [clean(str(tags[k])) for k in sorted(tags) if k != "host" and tags[k] != ""]
    parts.append(clean(measurement))
    if field != "value":
        parts.append(clean(field))
    return ".".join(parts)


def _token_re(sep: str, quotes: bool) -> re.Pattern[str]:
    """One part between separators: escapes, (quoted strings), other characters."""
    quoted = r'|"(?:\\.|[^"\\])*+"' if quotes else ""
    other = re.escape(sep) + ('"' if quotes else "") + "\\\\"
    return re.compile(rf"(?:\\.{quoted}|[^{other}]|\\\Z)*+", re.DOTALL)


_TOKENS = {(sep, q): _token_re(sep, q) for sep in (" ", ",") for q in (False, True)}


def _split(text: str, sep: str, quotes: bool = False) -> list[str]:
    """Split on unescaped ``sep`` (outside double quotes if ``quotes``), keeping escapes.

    The scanning is one regular expression per part (no Python loop per character):
    a long line costs little before it is refused."""
    if "\\" not in text and not (quotes and '"' in text):
        return text.split(sep)
    token = _TOKENS[(sep, quotes)]
    out, pos, end = [], 0, len(text)
    while True:
        m = token.match(text, pos)
        out.append(m.group())  # type: ignore[union-attr]  # the pattern matches ''
        pos = m.end()  # type: ignore[union-attr]
        if pos >= end:
            return out
        if text[pos] != sep:  # an opening quote without its closing one
            raise ValueError("unterminated_string")
        pos += 1


def _unescape(text: str) -> str:
    return re.sub(r"\\([,= \\\"])", r"\1", text) if "\\" in text else text


def _field_value(raw: str) -> float | None:
    """A float for numeric fields, None for string and boolean fields."""
    if raw.startswith('"') or raw in _BOOLS:
        return None
    if raw[-1:] in ("i", "u"):
        raw = raw[:-1]
    return float(raw)  # ValueError: not a field value


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, float | None], float | None]:
    """(measurement, tags, fields, timestamp or None); ValueError(reason) if malformed."""
    sections = _split(line, " ", quotes=True)
    sections = [s for s in sections if s]
    if len(sections) not in (2, 3):
        raise ValueError("line_fields")
    head = _split(sections[0], ",")
    measurement = _unescape(head[0])
    if not measurement:
        raise ValueError("no_measurement")
    tags: dict[str, str] = {}
    for pair in head[1:]:
        k, eq, v = pair.partition("=")
        if not eq or not k or not v:
            raise ValueError("bad_tag")
        tags[_unescape(k)] = _unescape(v)
    fields: dict[str, float | None] = {}
    for pair in _split(sections[1], ",", quotes=True):
        k, eq, v = pair.partition("=")
        if not eq or not k or not v:
            raise ValueError("bad_field")
        try:
            fields[_unescape(k)] = _field_value(v)
        except ValueError:
            raise ValueError("bad_field_value") from None
    ts = None
    if len(sections) == 3:
        try:
            ts = int(sections[2])
        except ValueError:
            raise ValueError("bad_timestamp") from None
    return measurement, tags, fields, ts


def _lines(body: bytes) -> Iterator[str | None]:
    """The body's lines (split on "\\n" only, as the protocol says), each decoded on its
    own: a line that is not UTF-8 is None, and the lines around it still count."""
    try:
        yield from body.decode("utf-8").split("\n")
        return
    except UnicodeDecodeError:
        pass  # the slow path: line by line
    for raw in body.split(b"\n"):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield None


def line_points(
    ctx: Context, body: bytes, namespace: str, precision: float
) -> tuple[Points, Rejects]:
    points, rejects = Points(), Rejects()
    now = ctx.ingest.clock()
    n = 0
    for lineno, line in enumerate(_lines(body), 1):
        deadline.check(lineno - 1)
        if line is None:
            rejects.add("malformed.not_utf8", f"line {lineno}", "")
            continue
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE_LENGTH:  # checked before any parsing (issue 15, item 4)
            rejects.add("malformed.line_too_long", f"line {lineno}", line[:200])
            continue
        try:
            measurement, tags, fields, ts = parse_line(line)
        except ValueError as exc:
            rejects.add(f"malformed.{exc}", f"line {lineno}", line)
            continue
        n += len(fields)
        check_count(n, ctx.config.max_metrics_per_request)
        # to_float: a 400-digit timestamp is an infinity (rejected), not an OverflowError
        t = to_float(ts) * precision if ts is not None else now  # type: ignore[operator]
        for field, value in fields.items():
            name = prefixed(namespace, graphite_name(measurement, tags, field))
            if value is None:
                rejects.add("field_not_numeric", f"line {lineno}", name)
            else:
                ctx.ingest.check(points, rejects, name, t, value, where=f"line {lineno}", now=now)
    return points, rejects


def telegraf_points(
    ctx: Context, data: dict, namespace: str, prefix: str = ""
) -> tuple[Points, Rejects]:
    """telegraf ``outputs.http`` JSON: one metric object, or ``{"metrics": [...]}``."""
    metrics = data.get("metrics", [data]) if "fields" not in data else [data]
    if not isinstance(metrics, list):
        raise HttpError(400, "metrics_not_a_list", "'metrics' must be a list of objects")
    ns = ".".join(p for p in (namespace, clean(prefix) if prefix else "") if p)
    points, rejects = Points(), Rejects()
    now = ctx.ingest.clock()
    fields_in = (m.get("fields") for m in metrics if isinstance(m, dict))
    check_count(
        sum(len(f) for f in fields_in if isinstance(f, dict)), ctx.config.max_metrics_per_request
    )
    for i, m in enumerate(metrics):
        deadline.check(i)
        if not isinstance(m, dict):
            rejects.add("not_an_object", i)
            continue
        name, tags, fields = m.get("name"), m.get("tags", {}), m.get("fields")
        if not isinstance(name, str) or not name or not isinstance(fields, dict):
            rejects.add("malformed.telegraf_metric", i, name)
            continue
        if not isinstance(tags, dict):
            tags = {}
        tags = {str(k): str(v) for k, v in tags.items()}
        ts = m.get("timestamp", now)
        for field, value in fields.items():
            full = prefixed(ns, graphite_name(name, tags, str(field)))
            if isinstance(value, bool | str) or value is None:
                rejects.add("field_not_numeric", i, full)
            else:
                ctx.ingest.check(points, rejects, full, ts, value, where=i, now=now)
    return points, rejects


def register(app: Flask, ctx: Context) -> None:
    @app.post("/flux/influx/write")
    @app.post("/flux/influx/api/v2/write")
    def influx_write() -> Response:
        key_id, namespace = ctx.authenticate()
        precision = PRECISION.get(request.args.get("precision", "ns"))
        if precision is None:
            raise HttpError(400, "bad_precision", "precision must be one of ns, u, ms, s, m, h")
        db = request.args.get("db") or request.args.get("bucket") or ""
        ns = ".".join(p for p in (namespace, clean(db) if db else "") if p)
        points, rejects = line_points(ctx, ctx.body(), ns, precision)
        ctx.admit(key_id, len(points))
        return ctx.finish(
            points, rejects, test=request.headers.get("x-test-only", "").lower() == "true"
        )
