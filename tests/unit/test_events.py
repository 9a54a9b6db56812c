"""Stream entries are parsed into events or refused with ValueError, whatever they
hold: a consumer can then count, log and acknowledge a bad entry instead of being
stuck re-reading it."""

from __future__ import annotations

import json

import pytest

from skyline.events.anomaly import AnomalyEvent, VerdictEvent

GOOD = AnomalyEvent("web.latency", 1_700_000_000, 900.0, "analyzer", ("grubbs",), ("grubbs",),
                    {"grubbs": 4.2})  # fmt: skip


def test_a_good_event_round_trips():
    fields = {k.encode(): v.encode() for k, v in GOOD.to_fields().items()}
    assert AnomalyEvent.from_fields(fields) == GOOD


def _with(**changes) -> dict[bytes, bytes]:
    body = json.loads(GOOD.to_fields()["event"])
    body.update(changes)
    return {b"event": json.dumps(body).encode()}


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {b"event": b""},
        {b"event": b"{not json"},
        {b"event": b"5"},
        {b"event": b'"x"'},
        {b"event": b"null"},
        {b"event": b"[]"},
        {b"event": b'{"metric": "m"}'},
        _with(metric=42),
        _with(metric=""),
        _with(metric=None),
        _with(timestamp="soon"),
        _with(timestamp=1.5),
        _with(value="high"),
        _with(value=True),
        _with(algorithms_run=[1, 2]),
        _with(triggered=None),
        _with(scores=[1]),
        _with(full_duration="day"),
        _with(unexpected="field"),
    ],
)  # fmt: skip
def test_bad_anomaly_entries_are_refused_with_value_error(fields):
    with pytest.raises(ValueError, match="not an anomaly event"):
        AnomalyEvent.from_fields(fields)


@pytest.mark.parametrize(
    "raw",
    [b"", b"5", b"null", b'"x"', b"[]", b'{"event_id": 1, "metric": "m", "timestamp": 1, '
     b'"stage": "s", "verdict": "v"}', b'{"event_id": "e"}'],
)  # fmt: skip
def test_bad_verdict_entries_are_refused_with_value_error(raw):
    with pytest.raises(ValueError, match="not a verdict event"):
        VerdictEvent.from_fields({b"verdict": raw})
