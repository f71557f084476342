"""Typed settings, read from ``EMOSTREAM_*`` environment variables.

Each setting is declared once, with its type, default and a docstring that is its
documentation (the README's settings table is printed from these declarations by
``emostream settings``). A setting ``foo_bar`` is read from ``EMOSTREAM_FOO_BAR``; a secret
may instead be read from the file named by ``EMOSTREAM_FOO_BAR_FILE`` (Docker/Kubernetes
secrets). Secrets never appear in ``repr`` or in the table.

Ingest and the Kafka connection are declared here; the worker extends this class in
``worker/settings.py`` so that one object configures one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "EMOSTREAM_"


class SettingError(ValueError):
    pass


@dataclass
class Setting:
    default: Any
    type: type
    doc: str
    secret: bool = False
    name: str = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj._values[self.name]

    def parse(self, raw: str) -> Any:
        try:
            if self.type is bool:
                low = raw.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(raw)
            if self.type is list:
                return [x.strip() for x in raw.split(",") if x.strip()]
            return self.type(raw)
        except ValueError as exc:
            raise SettingError(f"{self.env}={raw!r} is not a valid {self.type.__name__}") from exc


def setting(default: Any, doc: str, *, type: type | None = None, secret: bool = False) -> Any:
    return Setting(
        default, type or (list if isinstance(default, list) else default.__class__), doc, secret
    )


class Settings:
    """Kafka and ingest settings (the worker adds its own in ``worker.settings``)."""

    # -- Kafka ------------------------------------------------------------------------------
    kafka_bootstrap: str = setting("localhost:9092", "Kafka bootstrap servers, host:port[,...].")
    topic_posts: str = setting("emostream.posts", "Topic the ingest services write posts to.")
    topic_dead_letter: str = setting(
        "emostream.dead-letter", "Topic for messages the worker cannot decode, with a reason."
    )
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
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str = setting("PLAIN", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str = setting("", "SASL user name.")
    kafka_sasl_password: str = setting("", "SASL password.", secret=True)
    kafka_ssl_cafile: str = setting("", "CA bundle to verify the brokers (SSL, SASL_SSL).")
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

    def __init__(self, env: Mapping[str, str] | None = None, **overrides: Any) -> None:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, spec in self.declared().items():
            if name in overrides:
                values[name] = overrides.pop(name)
            elif spec.env in env:
                values[name] = spec.parse(env[spec.env])
            elif spec.secret and spec.env + "_FILE" in env:
                with open(env[spec.env + "_FILE"], encoding="utf-8") as fh:
                    values[name] = fh.read().strip()
            else:
                values[name] = spec.default
        if overrides:
            raise SettingError(f"unknown settings: {sorted(overrides)}")
        self._values = values

    @classmethod
    def declared(cls) -> dict[str, Setting]:
        out: dict[str, Setting] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Setting):
                    out[name] = value
        return out

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in kafka-python's terms (the worker maps them to faust's)."""
        proto = self.kafka_security_protocol.upper()
        allowed = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if proto not in allowed:
            raise SettingError(f"EMOSTREAM_KAFKA_SECURITY_PROTOCOL must be one of {allowed}")
        opts: dict[str, Any] = {"security_protocol": proto}
        if proto.startswith("SASL"):
            if not self.kafka_sasl_username or not self.kafka_sasl_password:
                raise SettingError(f"{proto} needs EMOSTREAM_KAFKA_SASL_USERNAME and _PASSWORD")
            opts.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password,
            )
        if proto.endswith("SSL") and self.kafka_ssl_cafile:
            opts["ssl_cafile"] = self.kafka_ssl_cafile
        return opts

    def replace(self, **changes: Any) -> Settings:
        merged = {**self._values, **changes}
        return type(self)(env={}, **merged)

    def __repr__(self) -> str:
        shown = {
            n: ("***" if s.secret and self._values[n] else self._values[n])
            for n, s in self.declared().items()
        }
        return f"{type(self).__name__}({shown})"

    def effective(self) -> str:
        """The values in force, one ``VARIABLE=value`` line each, secrets masked."""
        lines = []
        for name, spec in self.declared().items():
            value = self._values[name]
            if isinstance(value, list):
                value = ",".join(value)
            shown = ("***" if value else "") if spec.secret else value
            lines.append(f"{spec.env}={shown}")
        return "\n".join(lines)

    @classmethod
    def table(cls) -> str:
        """The settings as a Markdown table (for the README)."""
        rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
        for spec in cls.declared().values():
            default = spec.default
            if isinstance(default, list):
                default = ",".join(default)
            shown = "(secret)" if spec.secret else f"`{default}`"
            kind = spec.type.__name__ + (" (comma-separated)" if spec.type is list else "")
            extra = f" Or `{spec.env}_FILE`." if spec.secret else ""
            rows.append(f"| `{spec.env}` | {kind} | {shown} | {spec.doc}{extra} |")
        return "\n".join(rows)
