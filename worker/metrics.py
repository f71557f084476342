"""The worker's Prometheus metrics (prefix ``emostream_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

from .store_faults import FAULT_KINDS

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)

CLASSIFIED = Counter(
    "emostream_posts_classified_total",
    "Posts written to Redis with a prediction, by modalities used.",
    ["source", "modalities"],
)
BY_EMOTION = Counter(
    "emostream_posts_by_emotion_total",
    "Posts written, by source, channel and predicted emotion (the dashboard's emotion mix).",
    ["source", "channel", "emotion"],
)
UNCLASSIFIABLE = Counter(
    "emostream_posts_unclassifiable_total",
    "Posts written without a prediction (no text and the image failed), by image reason.",
    ["reason"],
)
BY_LANGUAGE = Counter(
    "emostream_posts_by_language_total",
    "Posts written with text, by its language (at most 40 values, then "
    "'other'; und: too little text to tell) and whether the model read it.",
    ["language", "read"],
)
DUPLICATES = Counter(
    "emostream_posts_duplicate_total",
    "Posts already written for this model version (redelivery); not counted again.",
)
DEAD_LETTERED = Counter(
    "emostream_posts_dead_lettered_total",
    "Messages sent to the dead-letter topic, by reason.",
    ["reason"],
)
DEAD_LETTER_ERRORS = Counter(
    "emostream_dead_letter_errors_total",
    "Failed sends to the dead-letter topic (retried; the message is held meanwhile).",
)
IMAGE_FAILURES = Counter(
    "emostream_image_failures_total", "Image fetch or decode failures, by reason.", ["reason"]
)
BATCH_SIZE = Histogram(
    "emostream_batch_size", "Posts per batch.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
BATCH_TARGET = Gauge(
    "emostream_batch_target", "The adaptive batch size the next batch may fill up to."
)
INFERENCE_SECONDS = Histogram(
    "emostream_inference_seconds", "Encoders + fusion head time per batch."
)
IMAGE_FETCH_SECONDS = Histogram("emostream_image_fetch_seconds", "Time of one image fetch.")
DECODE_SECONDS = Histogram("emostream_image_decode_seconds", "Time to decode a batch's images.")
REDIS_WRITE_SECONDS = Histogram("emostream_redis_write_seconds", "One batch's Redis pipeline.")
BATCH_SECONDS = Histogram("emostream_batch_seconds", "Whole batch: decode to written.")
END_TO_END_SECONDS = Histogram(
    "emostream_end_to_end_seconds",
    "From a post's ingested_at to its result written in Redis.",
    buckets=LATENCY_BUCKETS,
)
LATENCY_OUT_OF_RANGE = Counter(
    "emostream_latency_out_of_range_total",
    "Posts whose ingested_at is in the future or over 7 days old: not observed as latency.",
)
CREATED_AT_REPLACED = Counter(
    "emostream_created_at_replaced_total",
    "Posts whose created_at was before 2004 or over a day ahead: counted at their "
    "ingested_at instead, the value they came with kept as created_at_given.",
)
WORKER_SECONDS = Histogram(
    "emostream_worker_seconds",
    "From the worker receiving a post from Kafka to its result written in Redis.",
    buckets=LATENCY_BUCKETS,
)
FEATURES_COMPUTED = Counter(
    "emostream_features_computed_total",
    "Feature rows computed by the encoders, by modality (text, image).",
    ["modality"],
)
FEATURES_REUSED = Counter(
    "emostream_features_reused_total",
    "Feature rows reused instead of computed: a recent or same-batch identical text, image "
    "URL or image bytes (kind).",
    ["kind"],
)
REDIS_ERRORS = Counter(
    "emostream_redis_errors_total",
    "Failed Redis writes (the batch is held and retried, not dropped), by kind: connection, "
    "timeout, or the reply that refused the write (oom, busy, readonly, misconf, ...).",
    ["kind"],
)
for _kind in FAULT_KINDS:  # every kind present from the start, at 0
    REDIS_ERRORS.labels(_kind)
REDIS_STALLED = Gauge("emostream_redis_stalled", "1 while a batch waits for Redis to come back.")
CONSUMER_LAG = Gauge(
    "emostream_consumer_lag", "Messages behind the partition end, per partition.", ["partition"]
)
MODEL_INFO = Info("emostream_model", "The served model.")


class BoundedLabel:
    """At most ``limit`` distinct values of a label get a series of their own (the first
    seen); every other value shares ``other``. Keeps /metrics bounded whatever the input."""

    def __init__(self, limit: int, other: str = "other") -> None:
        self.limit = limit
        self.other = other
        self._known: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._known:
            return value
        if len(self._known) < self.limit:
            self._known.add(value)
            return value
        return self.other


LANGUAGES = BoundedLabel(40)
"""The language label of BY_LANGUAGE (ISO 639-1 codes: py3langid knows 97)."""
CHANNELS = BoundedLabel(100)
"""The channel label of BY_EMOTION; its limit is the ``metric_channels`` setting."""
