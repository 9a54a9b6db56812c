"""Prometheus remote_write: ``POST /flux/prometheus/write``.

The body is a snappy-compressed (block format) protobuf ``WriteRequest``
(prometheus/prompb/remote.proto).  The messages are built at run time from a
descriptor (only the fields flux reads; others are skipped by the parser), so
no generated code or protoc is needed.

Name mapping (documented in docs/flux.md; skyline.store.labels)::

    [<key namespace>.][<X-Tenant-Id>.][<X-Server-Id>.]<__name__>[.<label>=<value>]...

labels ordered by name, empty labels left out, ``[flux] prometheus_drop_labels``
left out; in a label value every character other than ``A-Za-z0-9+-%_:`` becomes
``_`` (so ``instance="127.0.0.1:9100"`` gives ``instance=127_0_0_1:9100``).
``*_bucket`` series are dropped by default.  NaN samples (staleness markers,
empty summaries) are skipped.  Samples older than ``prometheus_max_age`` are
answered 400 (after the valid samples of the request are stored) because
Prometheus retries 5xx and would resend them forever.

Each series keeps its labels: the first time a worker stores a series, its label set
(values as sent, plus ``_tenant_id`` / ``_server_id`` from the headers) goes to the
label index.  The ``dropMetrics`` and ``dropLabels`` request headers
(``drop_headers.py``) drop series and labels before the name is built.
"""

from __future__ import annotations

import math
import re

import cramjam
from flask import Flask, Response, request
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from skyline.ingest.flux import deadline
from skyline.ingest.flux.app import Context, json_response
from skyline.ingest.flux.drop_headers import Drops
from skyline.ingest.flux.influx import clean
from skyline.ingest.flux.limits import HttpError, check_count, read_body
from skyline.ingest.flux.writer import Points, Rejects
from skyline.store.datapoint import MAX_NAME_LENGTH, NAME_RE, Reject
from skyline.store.labels import LabelIndex, label_set

_VALUE_UNSAFE = re.compile(r"[^A-Za-z0-9+\-%_:]")
CLEAN_CACHE_LIMIT = 50_000
CLEAN_CACHE_VALUE_LENGTH = 128  # longer label values are cleaned every time, never kept
PROTOBUF_TYPES = ("", "application/x-protobuf", "application/octet-stream")


def _message_classes() -> dict[str, type]:
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="skyline/ingest/flux/remote_write.proto", package="prometheus", syntax="proto3"
    )
    spec = {
        "Label": [("name", 1, f.TYPE_STRING, ""), ("value", 2, f.TYPE_STRING, "")],
        "Sample": [("value", 1, f.TYPE_DOUBLE, ""), ("timestamp", 2, f.TYPE_INT64, "")],
        "TimeSeries": [
            ("labels", 1, f.TYPE_MESSAGE, ".prometheus.Label"),
            ("samples", 2, f.TYPE_MESSAGE, ".prometheus.Sample"),
        ],
        "WriteRequest": [("timeseries", 1, f.TYPE_MESSAGE, ".prometheus.TimeSeries")],
    }
    for message, fields in spec.items():
        m = fdp.message_type.add(name=message)
        for name, number, kind, type_name in fields:
            field = m.field.add(name=name, number=number, type=kind)
            field.label = f.LABEL_REPEATED if type_name else f.LABEL_OPTIONAL
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in spec
    }


MESSAGES = _message_classes()
WriteRequest = MESSAGES["WriteRequest"]


def decompress(raw: bytes, max_bytes: int) -> bytes:
    try:
        size = cramjam.snappy.decompress_raw_len(raw)
    except (cramjam.DecompressionError, ValueError, TypeError):
        raise HttpError(400, "bad_snappy", "body is not snappy (block format) data") from None
    if size > max_bytes:
        raise HttpError(
            413, "decompressed_too_large", f"body would decompress to {size} bytes, over "
            f"the limit of {max_bytes} bytes", limit=max_bytes,
        )  # fmt: skip
    try:
        return bytes(cramjam.snappy.decompress_raw(raw))
    except (cramjam.DecompressionError, ValueError) as exc:
        raise HttpError(400, "bad_snappy", f"snappy data is corrupt: {exc}"[:200]) from None


def parse(data: bytes) -> object:
    req = WriteRequest()
    try:
        req.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise HttpError(
            400, "bad_protobuf", f"not a remote_write WriteRequest: {exc}"[:200]
        ) from None
    return req


class Mapper:
    """Turns a WriteRequest into Skyline datapoints (one per worker, with a cache)."""

    def __init__(self, ctx: Context) -> None:
        cfg = ctx.config
        self.ctx = ctx
        self.skip = {"__name__", *cfg.prometheus_drop_labels}
        self.max_labels = cfg.prometheus_max_labels
        self.drop_buckets = cfg.prometheus_drop_buckets
        self._clean: dict[str, str] = {}
        self.index = LabelIndex(ctx.redis, ctx.ingest.store.keys)

    def clean_value(self, value: str) -> str:
        """The label value made name-safe; short values are remembered, so the cache
        holds at most CLEAN_CACHE_LIMIT x CLEAN_CACHE_VALUE_LENGTH characters."""
        out = self._clean.get(value)
        if out is None:
            out = _VALUE_UNSAFE.sub("_", value)
            if len(value) <= CLEAN_CACHE_VALUE_LENGTH:
                if len(self._clean) >= CLEAN_CACHE_LIMIT:
                    self._clean = {}
                self._clean[value] = out
        return out

    def convert(
        self, req: object, prefix: str, now: float, drops: Drops | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[Points, Rejects, int, dict[str, dict[str, str]]]:  # fmt: skip
        """(points, rejects, samples seen, label sets of metrics not registered yet);
        NaN samples and dropped series are counted."""
        cfg = self.ctx.config
        lo, hi = now - cfg.prometheus_max_age, now + cfg.max_future
        points, rejects = Points(), Rejects()
        add, skip, cache, clean_value = points.add, self.skip, self._clean, self.clean_value
        limit, seen, nan, buckets, dropped = cfg.max_metrics_per_request, 0, 0, 0, 0
        fullmatch = NAME_RE.fullmatch
        known = self.index.seen
        new_sets: dict[str, dict[str, str]] = {}
        drop_label = drops.drop_label if drops and drops.labels else None
        for i, series in enumerate(req.timeseries):  # type: ignore[attr-defined]
            deadline.check(i)
            samples = series.samples
            seen += len(samples)
            check_count(seen, limit)
            labels = series.labels
            if len(labels) > self.max_labels:
                rejects.add("too_many_labels", None, f"{len(labels)} labels")
                continue
            name, parts, raw, size = "", [], [], 0
            for label in labels:
                k = label.name
                if k == "__name__":
                    name = label.value
                elif k not in skip:
                    v = label.value
                    if v and not (drop_label and drop_label(k, v)):
                        size += len(k) + len(v)
                        if size > MAX_NAME_LENGTH:
                            break  # too long for a name: rejected below, nothing cleaned
                        parts.append((k, cache.get(v) or clean_value(v)))
                        raw.append((k, v))
            if size > MAX_NAME_LENGTH:
                rejects.add(Reject.NAME_TOO_LONG, None, name or "labels")
                continue
            if not name:
                rejects.add("no_metric_name")
                continue
            if self.drop_buckets and name.endswith("_bucket"):
                buckets += 1
                continue
            if drops and drops.drop_metric(name):
                dropped += 1
                continue
            parts.sort()
            metric = prefix + name
            if parts:
                metric += "." + ".".join([f"{k}={v}" for k, v in parts])
            if len(metric) > MAX_NAME_LENGTH or not fullmatch(metric):
                too_long = len(metric) > MAX_NAME_LENGTH
                rejects.add(Reject.NAME_TOO_LONG if too_long else Reject.NAME_CHARSET, None, metric)
                continue
            stored = 0
            for sample in samples:
                v, t = sample.value, sample.timestamp / 1000.0
                if v != v:
                    nan += 1
                elif lo <= t <= hi and not math.isinf(v):
                    add(metric, t, v)
                    stored += 1
                elif math.isinf(v):
                    rejects.add(Reject.VALUE_NOT_FINITE, None, metric)
                else:
                    reason = Reject.TIMESTAMP_TOO_OLD if t < lo else Reject.TIMESTAMP_IN_FUTURE
                    rejects.add(reason, None, metric)
            if stored and hash(metric) not in known and metric not in new_sets:
                new_sets[metric] = label_set(name, {**dict(raw), **(extra or {})})
        counters = self.ctx.counters
        counters.inc("prometheus.samples", seen)
        if nan:
            counters.inc("prometheus.nan_skipped", nan)
        if buckets:
            counters.inc("prometheus.bucket_series_dropped", buckets)
        if dropped:
            counters.inc("prometheus.series_dropped_by_header", dropped)
        return points, rejects, seen, new_sets


TENANT_HEADERS = (("X-Tenant-Id", "_tenant_id"), ("X-Server-Id", "_server_id"))


def tenant_prefix(namespace: str) -> tuple[str, dict[str, str]]:
    """The name prefix (namespace, tenant, server) and the tenant labels of the request."""
    parts = [namespace] if namespace else []
    extra: dict[str, str] = {}
    for header, label in TENANT_HEADERS:
        value = request.headers.get(header)
        if value:
            parts.append(clean(value[:200]))
            extra[label] = value[:200]
    return "".join(p + "." for p in parts), extra


def register(app: Flask, ctx: Context) -> None:
    mapper = Mapper(ctx)

    @app.post("/flux/prometheus/write")
    def prometheus_write() -> Response:
        key_id, namespace = ctx.authenticate()
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in PROTOBUF_TYPES:
            raise HttpError(
                415, "unsupported_content_type", "remote_write needs "
                "Content-Type application/x-protobuf (snappy-compressed WriteRequest)",
            )  # fmt: skip
        encoding = request.headers.get("Content-Encoding", "snappy").strip().lower()
        if encoding != "snappy":
            raise HttpError(
                415, "unsupported_encoding", "remote_write needs Content-Encoding snappy"
            )
        raw = read_body(request.stream, request.content_length, ctx.config.max_body_bytes)
        req = parse(decompress(raw, ctx.config.max_decompressed_bytes))
        drops = Drops.from_headers(request.headers)
        prefix, extra = tenant_prefix(namespace)
        points, rejects, _, new_sets = mapper.convert(req, prefix, ctx.ingest.clock(), drops, extra)
        ctx.admit(key_id, len(points))
        test = request.headers.get("x-test-only", "").lower() == "true"
        if not test:  # before the points, so whoever reads them finds their labels
            mapper.index.register(new_sets)
        if not rejects.counts.get(Reject.TIMESTAMP_TOO_OLD):
            return ctx.finish(points, rejects, test=test)
        ctx.ingest.write(points, rejects, test=test)
        return json_response(
            400, {"error": f"samples older than {ctx.config.prometheus_max_age}s are not "
                  "accepted (the others were stored)", "reason": "samples_too_old",
                  "accepted": len(points), **rejects.summary()},
        )  # fmt: skip
