"""What the webapp takes from a request that is not a form: a JSON body, and the query
arguments a page link carries on.  Hostile input gets a 400 with the reason, never a 500:

- a JSON body nested thousands deep makes Python's parser raise ``RecursionError``,
  which Flask's ``get_json(silent=True)`` does not catch;
- JSON may escape a lone surrogate (``"\\ud800"``), which Python decodes into a string
  no UTF-8 database, Redis key or log line can encode;
- ``url_for`` reads some keyword arguments itself (``_method``, ``_external``,
  ``_anchor``, ``_scheme``, and ``endpoint`` and ``values`` as its own parameters),
  so a query argument of that name must not be handed on to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import abort, request

URL_FOR_OWN = frozenset({"endpoint", "values", "_method", "_external", "_anchor", "_scheme"})


def json_object(*, empty_ok: bool = False) -> dict[str, Any]:
    """The request's JSON body, which must be an object (``{}`` for an empty body when
    ``empty_ok``); a 400 saying why otherwise."""
    data = request.get_data(cache=True)
    if empty_ok and not data:
        return {}
    if not request.is_json:
        abort(400, description="the body must be a JSON object (Content-Type: application/json)")
    try:
        body = json.loads(data)
    except RecursionError:
        abort(400, description="the body is nested too deeply")
    except ValueError:  # not JSON, or not UTF-8
        abort(400, description="the body must be a JSON object")
    if not isinstance(body, dict):
        abort(400, description="the body must be a JSON object")
    try:
        text = utf8(body)
    except RecursionError:  # dumps goes a little deeper than loads: at the edge, this
        abort(400, description="the body is nested too deeply")
    if not text:
        abort(400, description="the body holds text that is not UTF-8 (a lone surrogate "
                               "such as \\ud800)")  # fmt: skip
    return body


def utf8(value: object) -> bool:
    """Whether every string in ``value`` (parsed JSON) can be encoded as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def link_args(args: Mapping[str, str], drop: Iterable[str] = ()) -> dict[str, str]:
    """The query arguments a link to another page of the same list carries on: not
    empty, not in ``drop``, and none that ``url_for`` would take as its own."""
    skip = URL_FOR_OWN.union(drop)
    return {k: v for k, v in args.items() if v and k not in skip}
