"""Every Redis key Skyline uses, built in one place under one configurable prefix.

Each key is declared once in ``KEYS`` with its Redis type, its TTL, what it
holds and its Redis Cluster slot rule; ``RedisKeys`` builds the names.
``docs/redis-keys.md`` is generated from ``KEYS`` (``python -m skyline.store.keys``)
and a test keeps it in step.

Slot rule: a key's slot is the hash of its whole name unless keys must be named in
one command together, and then they share a hash tag (the part in ``{...}``).  Only
the streams do (``{stream}``: one XREADGROUP reads panorama's two streams); every
other command names one key, and multi-key reads (MGET of series) are grouped by
slot (``cluster.py``), so the metrics' keys spread evenly over the cluster.  The
prefix may not hold braces (``[redis] prefix``'s pattern), so it never makes a tag.
"""

from __future__ import annotations

from dataclasses import dataclass

SPREAD = "hash of the whole name (no tag): never named in one command with another key"
STREAM_SLOT = (
    "tag `{stream}`: every stream in one slot, so one XREADGROUP can read several "
    "(panorama reads anomalies and verdicts)"
)


@dataclass(frozen=True)
class KeySpec:
    template: str  # after the prefix; {metric}, {daemon} are placeholders
    type: str
    ttl: str
    holds: str
    slot: str = SPREAD


STREAM_TAG = "{stream}"
KEYS: dict[str, KeySpec] = {
    "series": KeySpec(
        "ts:{metric}",
        "STRING",
        "none; roomba deletes a metric inactive for skyline.metrics_inactive_after",
        "The recent window of one metric: a sealed block (24-byte header with the rewrite "
        "count, then the points roomba kept, compressed with pcodec), then fixed-width "
        "12-byte records <uint32 timestamp, float64 value> (little-endian) appended in "
        "arrival order; roomba rewrites it sorted, de-duplicated, trimmed and sealed. "
        "See docs/storage.md.",
    ),
    "metrics": KeySpec(
        "metrics",
        "SET",
        "none; members removed with their series",
        "Names of every metric that has a series key.",
    ),
    "changed": KeySpec(
        "changed",
        "SET",
        "86400 s, refreshed by every write",
        "Names of metrics that received data since the analyzer last took them (the "
        "analyzer pops members); lets analysis run on arrival without scanning.",
    ),
    "anomalies": KeySpec(
        "{stream}:anomalies",
        "STREAM",
        "none; capped at [analyzer] stream_maxlen entries (approximate MAXLEN)",
        "Anomaly events (skyline.events.anomaly.AnomalyEvent as JSON in field 'event', its "
        "idempotency key in field 'id') from analyzer, mirage and boundary to the "
        "downstream stages.",
        slot=STREAM_SLOT,
    ),
    "alerts": KeySpec(
        "{stream}:alerts",
        "STREAM",
        "none; capped at [analyzer] stream_maxlen entries",
        "Anomaly events to be alerted (they matched an [[alerts]] rule and passed mirage "
        "and ionosphere, or those stages were not running); read by the alerters' group.",
        slot=STREAM_SLOT,
    ),
    "mirage": KeySpec(
        "{stream}:mirage",
        "STREAM",
        "none; capped at [analyzer] stream_maxlen entries",
        "Analyzer anomalies of metrics whose alert rule has mirage hours, for mirage to "
        "confirm over the longer window.",
        slot=STREAM_SLOT,
    ),
    "ionosphere": KeySpec(
        "{stream}:ionosphere",
        "STREAM",
        "none; capped at [analyzer] stream_maxlen entries",
        "Anomalies (from analyzer, or confirmed by mirage) of metrics that have enabled "
        "features profiles, for ionosphere to match against them.",
        slot=STREAM_SLOT,
    ),
    "ionosphere_metrics": KeySpec(
        "ionosphere:metrics",
        "SET",
        "none; reconciled with SQL by ionosphere at start and every [ionosphere] "
        "maintenance_interval",
        "Names of metrics with at least one enabled features profile: routing sends their "
        "anomalies to ionosphere.",
    ),
    "profiles_version": KeySpec(
        "ionosphere:version:{metric}",
        "STRING",
        "none; never deleted (a deleted counter would restart at 1 and a cache could serve "
        "the index it holds for that number)",
        "Counter bumped whenever one of the metric's profiles is created, enabled, disabled, "
        "deleted or learnt: a cached copy of the profiles older than this is stale.",
    ),
    "rollup": KeySpec(
        "rollup:{resolution}:{metric}",
        "STRING",
        "[mirage] rollup_retention + 1 day, renewed by every append; trimmed to "
        "rollup_retention, deleted with the series",
        "Down-sampled history of one metric ([mirage] rollups says which), in the series "
        "format: a sealed block, then 12-byte records <uint32 bucket start, float64 mean>, "
        "one per complete bucket of `resolution` seconds, appended as buckets complete. "
        "See docs/mirage.md.",
    ),
    "detector_state": KeySpec(
        "detector:{metric}",
        "STRING",
        "2 x [skyline] full_duration (at least 2 days), renewed by every save; deleted with "
        "the series",
        "The analyzer's streaming-detector state of one metric ([analyzer] mode = default): "
        "a 24-byte header (magic, detector, version, width, last timestamp judged) and one "
        "fixed-width row of float64. Missing or of another version: rebuilt from the series. "
        "See docs/algorithms.md.",
    ),
    "boundary_breaches": KeySpec(
        "boundary:breaches:{rule}:{metric}",
        "STRING",
        "the rule's expiry, at least 3600 s",
        "'<count> <timestamp>': consecutive breaches of boundary rule number `rule` (0-based "
        "[[boundary]] table) by a metric (reset by a datapoint that does not breach) and the "
        "timestamp of the last datapoint judged; the rule alerts when the count reaches "
        "alert_threshold. Survives a restart of boundary.",
    ),
    "boundary_alert_sent": KeySpec(
        "boundary:last:{channel}:{algorithm}:{metric}",
        "STRING",
        "the [[boundary]] rule's expiry",
        "The alerters' dedupe key of a boundary alert (as alert:last, per algorithm too, so "
        "a greater_than and a less_than alert of one metric do not suppress each other).",
    ),
    "boundary_rate": KeySpec(
        "boundary:rate:{channel}:{window_start}",
        "STRING",
        "2 x the channel's rate window",
        "Boundary alerts sent on a channel in one rate-limit window ([boundary_daemon] "
        "channel_limits).",
    ),
    "verdicts": KeySpec(
        "{stream}:verdicts",
        "STREAM",
        "none; capped at [analyzer] stream_maxlen entries",
        "Verdict events (skyline.events.anomaly.VerdictEvent): each stage's decision about an "
        "anomaly; panorama records them as the anomaly's verdict trail.",
        slot=STREAM_SLOT,
    ),
    "alert_sent": KeySpec(
        "alert:last:{channel}:{metric}",
        "STRING",
        "the matching rule's expiration",
        "The id of the last alert sent for a metric on a channel: one alert per "
        "(channel, metric) per expiration; the id makes a re-delivery after a crash "
        "recognisable.",
    ),
    "alert_delivery": KeySpec(
        "alert:delivery:{channel}:{event_id}",
        "HASH",
        "the channel's give_up_after + 86400 s; 86400 s once finished",
        "One alert on one channel: status (pending, sent, failed), attempt count, next_at, "
        "deadline, last error and the steps already done (step.message_ts, step.graph, "
        "step.dedup_key, step.message_id), so a retry or a restarted alerter redoes only what "
        "failed.",
    ),
    "alert_log_outbox": KeySpec(
        "alert:log_outbox",
        "LIST",
        "7 days, refreshed by every row queued",
        "alert_log rows that could not be written to SQL (JSON, oldest first), written "
        "later by the alerters; at most 100,000 (the oldest are shed and counted).",
    ),
    "alert_lease": KeySpec(
        "alert:lease:{channel}:{event_id}",
        "STRING",
        "max([alerters] claim_idle, 6 x timeout) (deleted when the attempt ends)",
        "Held by the alerter making an attempt at one delivery, so two alerters never "
        "send the same alert at the same time.",
    ),
    "graph_image": KeySpec(
        "graph:{token}",
        "STRING",
        "[alerters.slack] image_ttl (7 days)",
        "The PNG graph of one alert, for a channel that shows graphs by link (Slack's "
        "incoming webhook): the webapp serves it without login at /graphs/<token>.png. "
        "`token` is a capability (secrets.token_urlsafe(32), 43 URL-safe characters): "
        "knowing it is the only permission. See skyline/store/graph_images.py.",
        slot=SPREAD + "; one key per image, read and written alone (Redis Cluster safe)",
    ),
    "panorama_repeat": KeySpec(
        "panorama:repeat:{event_id}",
        "STRING",
        "86400 s",
        "Marks an anomaly panorama counted as a repeat (not stored), so its verdicts are "
        "dropped at once.",
    ),
    "flux_rate": KeySpec(
        "flux:rate:{key_id}:{window_start}",
        "STRING",
        "2 x [flux] rate_limit_window",
        "Datapoints one flux API key sent in one rate-limit window (shared by all HTTP workers).",
    ),
    "login_attempts": KeySpec(
        "login:attempts:{kind}:{who}:{window_start}",
        "STRING",
        "2 x [webapp] login_window",
        "Webapp login attempts in one fixed window of one user name (kind 'user', a hash of "
        "the name; a right password clears it) or one client address (kind 'address'); past "
        "the limit logins are refused with 429.",
    ),
    "training_lock": KeySpec(
        "ionosphere:training:{anomaly_id}",
        "STRING",
        "120 s (deleted when the training ends)",
        "Held while the webapp trains a features profile from an anomaly, so a double "
        "click or a retried API call cannot create two profiles of one anomaly.",
    ),
    "thunder_stale": KeySpec(
        "thunder:stale",
        "HASH",
        "none; a member is removed when its metric arrives again or is deleted",
        "Metrics thunder found stale (no datapoint for their [[thunder.data]] rule's "
        "stale_after): metric -> timestamp of its newest datapoint.  A metric is reported "
        "once when it goes stale, not again until it has come back.",
    ),
    "heartbeat": KeySpec(
        "heartbeat:{daemon}",
        "STRING",
        "skyline.heartbeat_ttl (120 s)",
        "JSON {pid, host, started, ts, runs} refreshed by each run of a daemon; its age is "
        "the daemon's liveness.",
    ),
    "members": KeySpec(
        "members:{daemon}",
        "HASH",
        "3 x [skyline] member_lease (at least 60 s), refreshed by every renewal",
        "The live processes of one daemon kind (skyline/runtime/membership.py): member id "
        "(host-pid-token) -> JSON {kind, host, pid, started, ts, until, info}; a member "
        "renews its lease ('until') every pass and removes its field when it stops; a field "
        "whose lease ran out is ignored, and removed by the others one lease later.",
    ),
    "member_changed": KeySpec(
        "changed:member:{member}",
        "SET",
        "86400 s, refreshed by every write",
        "Names of metrics with new data that another analyzer took from the changed set "
        "but this member owns (skyline/analysis/analyzer/sharding.py); the owner pops "
        "them, and when its lease runs out the survivors move them to the new owners.",
    ),
    "counters": KeySpec(
        "counters:{daemon}",
        "HASH",
        "3 x skyline.counters_interval (counters:flux-http: 600 s)",
        "The latest value of each of a daemon's counters (they are also stored as the "
        "metrics skyline.<daemon>.<host>.<counter>). counters:flux-http collects the "
        "gunicorn workers' counts until the flux daemon takes them.",
    ),
    "vista_cursor": KeySpec(
        "vista:cursor:{source}",
        "HASH",
        "none; deleted by skyline vista backfill (which re-reads the history)",
        "Where a vista pull source stopped: field '' the end of the last window answered, "
        "each other field a metric and the timestamp of its newest point stored ('writing' "
        "while a pass writes). See skyline/ingest/vista/cursor.py.",
    ),
    "vista_status": KeySpec(
        "vista:status",
        "HASH",
        "none; a field per [[vista]] source, rewritten after each pull",
        "JSON state of each pull source (last success, consecutive failures, errors by "
        "reason, last error and when) for the Status page and /api/v1/status.",
    ),
    "labels": KeySpec(
        "labels",
        "HASH",
        "none; a field per labelled metric (metrics without labels have none), deleted "
        "with the metric's series",
        "The label set of each labelled metric as it was sent (JSON object, __name__ "
        "without the flux/vista prefix), keyed by the metric's flattened series name; "
        "written once by flux and vista (HSET of the metrics HMGET did not find), read by label selectors. See "
        "skyline/store/labels.py.",
    ),
    "labels_new": KeySpec(
        "labels:new",
        "SET",
        "none; panorama pops members as it writes them to SQL",
        "Labelled metrics whose label set is not yet in the metric_labels SQL table.",
    ),
}


class RedisKeys:
    """Builds key names; the only code that knows how Skyline's keys are spelled."""

    def __init__(self, prefix: str = "sky:") -> None:
        self.prefix = prefix
        self._series = f"{prefix}ts:"

    def series(self, metric: str) -> str:
        return self._series + metric

    def metrics(self) -> str:
        return f"{self.prefix}metrics"

    def changed(self) -> str:
        return f"{self.prefix}changed"

    def anomalies_stream(self) -> str:
        return f"{self.prefix}{STREAM_TAG}:anomalies"

    def alerts_stream(self) -> str:
        return f"{self.prefix}{STREAM_TAG}:alerts"

    def mirage_stream(self) -> str:
        return f"{self.prefix}{STREAM_TAG}:mirage"

    def ionosphere_stream(self) -> str:
        return f"{self.prefix}{STREAM_TAG}:ionosphere"

    def ionosphere_metrics(self) -> str:
        return f"{self.prefix}ionosphere:metrics"

    def profiles_version(self, metric: str) -> str:
        return f"{self.prefix}ionosphere:version:{metric}"

    def rollup(self, resolution: int, metric: str) -> str:
        return f"{self.prefix}rollup:{resolution}:{metric}"

    def detector_state(self, metric: str) -> str:
        return f"{self.prefix}detector:{metric}"

    def boundary_breaches(self, rule: int, metric: str) -> str:
        return f"{self.prefix}boundary:breaches:{rule}:{metric}"

    def boundary_alert_sent(self, channel: str, algorithm: str, metric: str) -> str:
        return f"{self.prefix}boundary:last:{channel}:{algorithm}:{metric}"

    def boundary_rate(self, channel: str, window_start: int) -> str:
        return f"{self.prefix}boundary:rate:{channel}:{window_start}"

    def verdicts_stream(self) -> str:
        return f"{self.prefix}{STREAM_TAG}:verdicts"

    def alert_sent(self, channel: str, metric: str) -> str:
        return f"{self.prefix}alert:last:{channel}:{metric}"

    def alert_delivery(self, channel: str, event_id: str) -> str:
        return f"{self.prefix}alert:delivery:{channel}:{event_id}"

    def alert_log_outbox(self) -> str:
        return f"{self.prefix}alert:log_outbox"

    def alert_lease(self, channel: str, event_id: str) -> str:
        return f"{self.prefix}alert:lease:{channel}:{event_id}"

    def graph_image(self, token: str) -> str:
        return f"{self.prefix}graph:{token}"

    def panorama_repeat(self, event_id: str) -> str:
        return f"{self.prefix}panorama:repeat:{event_id}"

    def flux_rate(self, key_id: int, window_start: int) -> str:
        return f"{self.prefix}flux:rate:{key_id}:{window_start}"

    def login_attempts(self, kind: str, who: str, window_start: int | str) -> str:
        return f"{self.prefix}login:attempts:{kind}:{who}:{window_start}"

    def training_lock(self, anomaly_id: int) -> str:
        return f"{self.prefix}ionosphere:training:{anomaly_id}"

    def thunder_stale(self) -> str:
        return f"{self.prefix}thunder:stale"

    def heartbeat(self, daemon: str) -> str:
        return f"{self.prefix}heartbeat:{daemon}"

    def members(self, daemon: str) -> str:
        return f"{self.prefix}members:{daemon}"

    def member_changed(self, member: str) -> str:
        return f"{self.prefix}changed:member:{member}"

    def counters(self, daemon: str) -> str:
        return f"{self.prefix}counters:{daemon}"

    def vista_cursor(self, source: str) -> str:
        return f"{self.prefix}vista:cursor:{source}"

    def vista_status(self) -> str:
        return f"{self.prefix}vista:status"

    def labels(self) -> str:
        return f"{self.prefix}labels"

    def labels_new(self) -> str:
        return f"{self.prefix}labels:new"


def render_markdown(prefix: str = "sky:") -> str:
    lines = [
        "# Redis keys",
        "",
        "Generated from `skyline/store/keys.py` (`python -m skyline.store.keys > docs/redis-keys.md`).",
        f"Every key starts with `[redis] prefix` (default `{prefix}`).",
        "",
        "",
        "Redis Cluster slot rule: a key's slot is the hash of its whole name unless keys",
        "must be named in one command together; those share a hash tag (the part in",
        "`{...}`).  Only the streams do.  Every other command names one key, and reads",
        "of many keys (MGET of series) are grouped by slot and pipelined per node, so",
        "the metrics' keys spread over every master.  No Lua script or transaction",
        "names two keys.  The prefix may not contain braces, so it never forms a tag.",
        "",
        "| key | type | TTL | Redis Cluster slot | holds |",
        "|---|---|---|---|---|",
    ]
    for spec in KEYS.values():
        lines.append(
            f"| `{prefix}{spec.template}` | {spec.type} | {spec.ttl} | {spec.slot} | {spec.holds} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
