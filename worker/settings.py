"""Worker settings: the Kafka connection plus batching, images, Redis and metrics.

See ``emostream/settings.py`` for how settings are declared and read (``EMOSTREAM_*``).
"""

from __future__ import annotations

import os

from emostream.settings import KafkaSettings, setting


class WorkerSettings(KafkaSettings):
    # -- Consuming ----------------------------------------------------------------------------
    consumer_group: str = setting(
        "emostream-worker", "Kafka consumer group; workers in one group share the partitions."
    )
    run_id: str = setting(
        "",
        "Write results into this replay run's namespace (<key_prefix>:replay:<run_id>): "
        "for a worker group that consumes a replay topic. Empty: the live namespace. The "
        "run_id field of a message is never used to choose the namespace.",
    )
    max_batch: int = setting(32, "Most posts classified in one forward pass (the adaptive cap).")
    max_wait_s: float = setting(
        0.5,
        "Longest wait for a batch to fill: from the first post's arrival with adaptive "
        "batching, less the time a batch takes to prepare (image fetch and decode), so wait "
        "plus fetching stay within it; from when the worker asks without.",
    )
    adaptive_batching: bool = setting(
        True,
        "Size batches to the backlog: grow (up to max_batch) while lag is high, shrink when "
        "caught up, never beyond what latency_target_s allows. False: faust's noack_take, "
        "always max_batch.",
    )
    min_batch: int = setting(1, "Smallest batch the adaptive batching shrinks to.")
    latency_target_s: float = setting(
        2.0,
        "End-to-end latency the adaptive batching aims under: a batch is kept small enough "
        "that max_wait_s + 2 x its compute time stays within it.",
    )
    broker_session_timeout_s: float = setting(
        60.0, "Kafka consumer-group timeout: a silent member is evicted after it."
    )
    broker_heartbeat_interval_s: float = setting(3.0, "Heartbeat period to the group.")
    topic_partitions: int = setting(
        8, "Partitions of the posts topic when the worker creates it (the most workers in a group)."
    )

    # -- Images -------------------------------------------------------------------------------
    image_timeout_s: float = setting(5.0, "Time cap of one image fetch, redirects included.")
    image_max_bytes: int = setting(10 * 1024 * 1024, "Byte cap of one image.")
    image_max_pixels: int = setting(
        40_000_000, "Larger pictures are refused (decompression bombs)."
    )
    image_max_side: int = setting(20_000, "Pictures with a longer side are refused.")
    image_max_aspect: float = setting(
        20.0,
        "Pictures more elongated than this (long side / short side) are refused: a 1 x 4,000 "
        "strip costs seconds and a gigabyte to resize.",
    )
    image_max_redirects: int = setting(3, "Redirects followed (each re-checked).")
    image_concurrency: int = setting(16, "Image fetches in flight per worker.")
    image_allow_networks: list = setting(
        [], "Networks (CIDR) fetched even though private, e.g. 127.0.0.0/8 for tests."
    )
    decode_threads: int = setting(
        os.cpu_count() or 2, "Threads decoding images off the event loop."
    )

    gpu_decode: bool = setting(
        True, "On CUDA, decode JPEGs on the GPU (nvJPEG) when torchvision loads; else Pillow."
    )

    # -- Model --------------------------------------------------------------------------------
    weights: str = setting(
        "DEFAULT",
        "Shipped weights to serve: a member of model.weights.Weights (DEFAULT, "
        "COMMONSPACE_V2, COMMONSPACE_V1).",
    )
    shadow: bool = setting(
        False,
        "Shadow mode: write every result under <key_prefix>:shadow:<model version>:*, never "
        "the live keys. Run it as a second consumer group on the live topic to compare a "
        "model with the live one (/api/compare) before switching.",
    )
    device: str = setting("auto", "auto (cuda when present), cpu, cuda or cuda:N.")
    precision: str = setting(
        "auto", "Encoders' autocast dtype: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16."
    )
    runtime: str = setting(
        "auto",
        "Encoders' runtime: auto (onnx on CPU, eager on CUDA), eager (torch), onnx (ONNX "
        "Runtime, fp32: same features, faster), onnx-int8 (int8 text weights: faster on "
        "text, up to 2 points of accuracy on some test sets) or onnx-int8-image (static "
        "int8 image encoder: about twice the pictures per second, moves about 5% of the "
        "top labels of image-only posts; docs/performance.md).",
    )
    unsupported_language: str = setting(
        "image",
        "A post whose text is in a language the model cannot read (it reads English): image "
        "(classified from its picture alone when it has one, else status "
        "unsupported_language, counted in no emotion's share), skip (never classified) or "
        "read (read as English anyway). docs/labels.md.",
        choices=("image", "skip", "read"),
    )
    torch_threads: int = setting(0, "CPU threads for torch; 0: torch's default.")
    feature_reuse_size: int = setting(
        10_000,
        "Recent text / image URL / image bytes features kept for reuse (each); 0: off.",
    )
    feature_reuse_ttl_s: float = setting(
        600.0, "Longest a remembered feature is reused (a picture at a URL may change)."
    )

    # -- Redis --------------------------------------------------------------------------------
    redis_url: str = setting(
        "redis://localhost:6379/0", "Redis for results (redis:// or rediss://)."
    )
    redis_username: str = setting("", "Redis ACL user name (with redis_password).")
    redis_password: str = setting("", "Redis AUTH password (if not in the URL).", secret=True)
    redis_ssl_ca: str = setting("", "CA bundle to verify Redis over TLS (a rediss:// URL).")
    result_ttl_s: int = setting(7 * 24 * 3600, "Lifetime of a post's result hash.")
    count_bucket_s: int = setting(60, "Width of the time buckets of the counts.")
    count_ttl_s: int = setting(30 * 24 * 3600, "Lifetime of a count bucket.")
    feed_maxlen: int = setting(10_000, "Approximate length cap of the dashboard feed stream.")
    key_prefix: str = setting("emo", "Prefix of every Redis key; replays add :replay:<run id>.")
    redis_retry_max_s: float = setting(
        10.0, "Longest back-off between retries while Redis is down (the batch is held)."
    )

    # -- Dashboard API ------------------------------------------------------------------------
    api_host: str = setting("0.0.0.0", "Address the dashboard API listens on.")
    api_port: int = setting(8080, "Port of the dashboard API and page.")
    api_metrics_port: int = setting(
        9102, "Port of the API's own /metrics (apart from the API's port); 0: none."
    )
    api_auth: str = setting(
        "token",
        "token: every route but /healthz needs a token of api_tokens_file; none: open, "
        "allowed only when api_host is a loopback address (a development run).",
        choices=("token", "none"),
    )
    api_tokens_file: str = setting(
        "",
        "File of the API's tokens, one '<scope> <name> <token>' per line (scope: read or "
        "admin); read again when it changes (rotation, revocation). docs/operations.md.",
    )
    api_auth_failures: int = setting(
        10, "Wrong tokens an address may present per api_auth_failure_window_s (then 429)."
    )
    api_auth_failure_window_s: float = setting(
        60.0, "Window over which an address's wrong tokens are counted."
    )
    api_feed_clients_max: int = setting(
        50, "Live feeds open at once, all clients together (below the Redis pool of 100)."
    )
    api_feed_clients_per_token: int = setting(10, "Live feeds open at once per token.")
    api_trusted_proxies: str = setting(
        "",
        "Addresses or CIDRs of reverse proxies in front of the API (comma-separated): "
        "behind one, a client's address (rate limit, access log) is read from "
        "X-Forwarded-For; empty: the peer's address always.",
    )
    api_hourly_counts: bool = setting(
        True,
        "Chart bins of an hour or more are read from the hourly counts ({prefix}:hours:*; "
        "a 30-day chart: 721 reads instead of 43,200); off: from the per-bucket counts "
        "always (results written before the hourly counts existed).",
    )
    api_cors_origins: str = setting(
        "", "Origins allowed to call the API from a browser (comma-separated); empty: none."
    )

    # -- Metrics ------------------------------------------------------------------------------
    state_dir: str = setting(
        "~/.local/state/emostream",
        "Folder for the worker's local state (faust's <group>-data folder); never the "
        "working directory.",
    )
    worker_metrics_port: int = setting(9101, "Port of the worker /metrics endpoint; 0: none.")
    metric_channels: int = setting(
        100,
        "Distinct channels that get a Prometheus series of their own (the first seen); "
        'posts of any other channel are counted under channel="other".',
    )
