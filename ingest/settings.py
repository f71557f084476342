"""Settings of the ingest services: the Kafka connection (``emostream/settings.py``), the
producer and the sources (Reddit, Flickr), read from ``EMOSTREAM_*`` variables."""

from __future__ import annotations

from emostream.settings import KafkaSettings, SettingError, setting

__all__ = ["IngestSettings", "SettingError"]


class IngestSettings(KafkaSettings):
    """Kafka, the producer and the sources."""

    # -- Producer ---------------------------------------------------------------------------
    producer_compression: str = setting(
        "gzip", "Producer compression: gzip, or none (lz4/zstd need their Python packages)."
    )
    producer_linger_ms: int = setting(20, "How long the producer waits to fill a batch.")
    producer_batch_bytes: int = setting(65536, "Largest producer batch per partition.")
    producer_max_in_flight: int = setting(
        10_000,
        "Posts sent but not yet acknowledged, at most (bounds memory while Kafka is away); "
        "beyond it send() waits up to producer_max_block_ms, then fails (counted).",
    )
    producer_max_block_ms: int = setting(60_000, "See producer_max_in_flight.")
    producer_delivery_timeout_s: float = setting(
        120.0, "A record not acknowledged by all in-sync replicas by then counts as failed."
    )
    producer_connect_s: float = setting(
        0.0,
        "How long ingest keeps trying to reach the brokers at start (with back-off); "
        "0: until they answer.",
    )
    producer_unhealthy_after_s: float = setting(
        60.0,
        "After this long with only failed sends (no acknowledgement), the ingest reports "
        "emostream_producer_healthy 0 (EmostreamIngestFailing alerts).",
    )
    ingest_metrics_port: int = setting(9100, "Port of the ingest /metrics endpoint; 0: none.")

    # -- Reddit (praw) ------------------------------------------------------------------------
    reddit_client_id: str = setting("", "Reddit app client id (a 'script' app).", secret=True)
    reddit_client_secret: str = setting("", "Reddit app client secret.", secret=True)
    reddit_user_agent: str = setting(
        "emostream/0.1 (emotion monitoring)",
        "User agent sent to Reddit (Reddit's rules ask for one).",
    )
    reddit_subreddits: list = setting(["happy", "creepy", "rage"], "Subreddits to follow.")
    reddit_backfill: int = setting(100, "Newest submissions per subreddit to send at start.")
    reddit_oauth_url: str = setting("https://oauth.reddit.com", "Reddit API base URL.")
    reddit_url: str = setting("https://www.reddit.com", "Reddit site URL (token endpoint).")

    # -- Flickr (REST API) --------------------------------------------------------------------
    flickr_api_key: str = setting("", "Flickr API key.", secret=True)
    flickr_api_url: str = setting("https://api.flickr.com/services/rest/", "Flickr REST endpoint.")
    flickr_tags: list = setting([], "Tags to search (any of them); empty: the recent feed.")
    flickr_per_page: int = setting(100, "Photos per API page (Flickr allows up to 500).")
    flickr_requests_per_hour: int = setting(
        3000, "Client-side cap on API calls (Flickr's limit is 3600 per key per hour)."
    )
    flickr_poll_s: float = setting(60.0, "Seconds between polls for new photos.")
