"""StreamConsumer on a real Redis: a pending entry that was trimmed from the stream
(MAXLEN) leaves the pending list instead of staying there for ever."""

from __future__ import annotations

from skyline.events.streams import StreamConsumer


def test_pending_entries_trimmed_from_the_stream_are_acknowledged(redis_client):
    stream = "t:stream"
    for i in range(5):
        redis_client.xadd(stream, {"n": str(i)})
    consumer = StreamConsumer(redis_client, [stream], "g", "c1")
    consumer.ensure_groups()
    consumer._own_pending = False  # a consumer that already went through its pending
    taken = consumer.read(block_ms=10)
    assert len(taken) == 5 and consumer.pending_count() == 5  # taken, none acknowledged
    consumer.ack(stream, taken[0][1])
    redis_client.xtrim(
        stream, maxlen=1, approximate=False
    )  # three of the four pending are trimmed away
    consumer.recover()  # after a failed pass: own pending first
    again = consumer.read(block_ms=10)
    assert [fields for _, _, fields in again] == [{b"n": b"4"}]
    assert consumer.pending_count() == 1  # only the one that still exists
