"""The ingest services' Prometheus metrics (prefix ``emostream_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

INGESTED = Counter(
    "emostream_posts_ingested_total",
    "Posts acknowledged by Kafka, by source.",
    ["source"],
)
PRODUCE_FAILURES = Counter(
    "emostream_produce_failures_total",
    "Posts Kafka did not acknowledge (after the producer's retries), by source and error.",
    ["source", "error"],
)
SOURCE_ERRORS = Counter(
    "emostream_source_errors_total",
    "Errors talking to a source API (retried), by source and kind.",
    ["source", "kind"],
)
SKIPPED = Counter(
    "emostream_posts_skipped_total",
    "Source items not turned into posts (no text and no image, invalid), by source and reason.",
    ["source", "reason"],
)
IN_FLIGHT = Gauge("emostream_produce_in_flight", "Posts sent to Kafka, not yet acknowledged.")
BROKER_UNREACHABLE = Counter(
    "emostream_broker_unreachable_total",
    "Failed attempts to reach the brokers at start (retried with back-off).",
)
PRODUCER_REBUILDS = Counter(
    "emostream_producer_rebuilds_total",
    "Kafka producers closed and built anew after an error that broke them (an unknown "
    "producer id after a broker lost its state, ...); their posts are sent again.",
    ["source"],
)
PRODUCER_HEALTHY = Gauge(
    "emostream_producer_healthy",
    "0 once every send has failed for producer_unhealthy_after_s (no acknowledgement since).",
    ["source"],
)
