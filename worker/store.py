"""Results in Redis: idempotent by post id and model version.

Keys:

``{p}:post:{id}``                   hash: the result (label, scores, sentiment, modalities,
                                    image status, model version, timestamps); TTL
``{p}:seen:{version}:{id}``         marker: this post was counted for this model version
``{p}:counts:{version}:{bucket}``   hash ``source|channel|label`` -> posts created in the
                                    bucket (epoch seconds of its start), and
                                    ``source|channel|s:sentiment`` likewise; TTL
``{p}:hours:{version}:{hour}``      the same counts per hour (``HOUR_S``), bumped by the same
                                    script: a month's chart reads 720 hashes, not 43,200; TTL
``{p}:totals:{version}``            hash ``label`` -> posts, all time
``{p}:feed``                        stream of results for dashboards, capped (~feed_maxlen)

``{p}`` is ``emo`` live, ``emo:replay:<run id>`` for a replay and
``emo:shadow:<model version>`` for a shadow worker group (``EMOSTREAM_SHADOW``).

One Lua script per post, all of a batch's scripts in one pipeline (one round trip). The
script sets the marker with NX; only when it was not there does it write the hash, bump
the counts and append to the feed. A redelivered post therefore changes nothing, and each
post is counted once per model version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from emostream.model.prediction import Prediction

if TYPE_CHECKING:  # the dashboard API imports this module; it needs neither torch nor faust
    from emostream.record import Post

    from .settings import WorkerSettings

WRITE_SCRIPT = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
local n = tonumber(ARGV[5])
local fields = {}
for i = 1, n do fields[i] = ARGV[5 + i] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if ARGV[7 + n] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[7 + n], 1) end
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('HINCRBY', KEYS[6], ARGV[2], 1)
if ARGV[7 + n] ~= '' then redis.call('HINCRBY', KEYS[6], ARGV[7 + n], 1) end
redis.call('EXPIRE', KEYS[6], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[6 + n], 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
return 1
"""


HOUR_S = 3600
"""Width of the pre-aggregated buckets (``{p}:hours:*``) that long ranges are read from."""

SENTIMENT_MARK = "s:"
"""Count fields of sentiments carry this before the sentiment (emotions carry none)."""


@dataclass(frozen=True)
class Result:
    """What the worker writes for one post: the post's identity and times, and what the
    classifier said about it."""

    id: str
    source: str
    channel: str
    created_at: datetime
    ingested_at: datetime
    written_at: datetime
    prediction: Prediction
    """The classifier's answer; its ``image_status`` is the worker's (fetch included) and
    its ``model_version`` the writer's. ``Prediction.unclassifiable`` when there was
    nothing to classify."""
    run_id: str | None = None
    text: str = ""  # first characters, for the dashboard feed
    received_at: datetime | None = None
    """When the worker received the message from Kafka: ingested -> received is the broker's
    share of the latency, received -> written the worker's."""
    created_at_given: str = ""
    """The post's own created_at when it was out of range and replaced by its ingested_at
    (``record.bounded_created_at``); "" otherwise."""
    permalink: str = ""
    """Where the post can be read at its source ("" when the source gave none)."""

    @classmethod
    def from_prediction(
        cls,
        post: Post,
        pred: Prediction | None,
        *,
        image_status: str,
        model_version: str,
        received_at: datetime | None,
        written_at: datetime,
        run_id: str | None = None,
        created_at_given: str = "",
    ) -> Result:
        """The result of a post; ``pred`` None: no text and its image failed (unclassifiable).
        ``run_id`` is the namespace the writer works for, never the message's own field."""
        if pred is None:
            pred = Prediction.unclassifiable(image_status, model_version)
        return cls(
            id=post.id,
            source=post.source,
            channel=post.channel,
            created_at=post.created_at,
            ingested_at=post.ingested_at,
            written_at=written_at,
            prediction=replace(pred, image_status=image_status, model_version=model_version),
            received_at=received_at,
            run_id=run_id,
            text=(post.text or "")[:280],
            created_at_given=created_at_given,
            permalink=post.permalink or "",
        )

    @property
    def label(self) -> str:
        """The top emotion; "" when the post was not classified (see ``status``)."""
        return self.prediction.label

    @property
    def status(self) -> str:
        """classified, unsupported_language (counted apart from the emotions) or
        unclassifiable."""
        return self.prediction.status

    def fields(self) -> dict[str, str]:
        p = self.prediction
        return {
            "id": self.id,
            "source": self.source,
            "channel": self.channel,
            "label": p.label,
            "status": p.status,
            "emotions": json.dumps(p.emotions, separators=(",", ":")),
            "sentiment": p.sentiment,
            "sentiments": json.dumps(p.sentiments, separators=(",", ":")),
            "modalities": ",".join(p.modalities),
            "image_status": p.image_status,
            "model_version": p.model_version,
            "created_at": self.created_at.isoformat(),
            "ingested_at": self.ingested_at.isoformat(),
            "written_at": self.written_at.isoformat(),
            "text": self.text,
            "language": p.language,
            **({"run_id": self.run_id} if self.run_id else {}),
            **({"received_at": self.received_at.isoformat()} if self.received_at else {}),
            **({"created_at_given": self.created_at_given} if self.created_at_given else {}),
            **({"permalink": self.permalink} if self.permalink else {}),
        }


class Keys:
    def __init__(self, prefix: str = "emo", run_id: str | None = None) -> None:
        self.prefix = f"{prefix}:replay:{run_id}" if run_id else prefix

    def post(self, post_id: str) -> str:
        return f"{self.prefix}:post:{post_id}"

    def seen(self, version: str, post_id: str) -> str:
        return f"{self.prefix}:seen:{version}:{post_id}"

    def counts(self, version: str, bucket: int) -> str:
        return f"{self.prefix}:counts:{version}:{bucket}"

    def hours(self, version: str, hour: int) -> str:
        """The counts of the hour starting at ``hour`` (epoch s, a multiple of HOUR_S)."""
        return f"{self.prefix}:hours:{version}:{hour}"

    def totals(self, version: str) -> str:
        return f"{self.prefix}:totals:{version}"

    def feed(self) -> str:
        return f"{self.prefix}:feed"


class ResultStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "emo",
        ttl_s: int = 7 * 24 * 3600,
        bucket_s: int = 60,
        count_ttl_s: int = 30 * 24 * 3600,
        feed_maxlen: int = 10_000,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.bucket_s = bucket_s
        self.count_ttl_s = count_ttl_s
        self.feed_maxlen = feed_maxlen
        self._script = client.register_script(WRITE_SCRIPT)

    @classmethod
    def from_url(cls, url: str, **kw) -> ResultStore:
        """A store on ``url`` with no credentials (tests, benchmarks); see ``from_settings``."""
        from .redis_client import TIMEOUT_S

        client = aioredis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        return cls(client, **kw)

    @classmethod
    def from_settings(
        cls, settings: WorkerSettings, shadow_version: str | None = None
    ) -> ResultStore:
        """Connected as ``worker/redis_client.py`` says, laid out as the settings say; with
        ``shadow_version``, every key under ``<prefix>:shadow:<version>`` instead."""
        from .redis_client import async_client

        prefix = settings.key_prefix
        return cls(
            async_client(settings),
            prefix=f"{prefix}:shadow:{shadow_version}" if shadow_version else prefix,
            ttl_s=settings.result_ttl_s,
            bucket_s=settings.count_bucket_s,
            count_ttl_s=settings.count_ttl_s,
            feed_maxlen=settings.feed_maxlen,
        )

    def bucket(self, created_at: datetime, width_s: int | None = None) -> int:
        ts = int(created_at.timestamp())
        return ts - ts % (width_s or self.bucket_s)

    async def write(self, results: list[Result]) -> list[bool]:
        """One pipeline for the batch; True where the post was new for its model version."""
        if not results:
            return []
        pipe = self.client.pipeline(transaction=False)
        for r in results:
            keys = Keys(self.prefix, r.run_id)
            fields = r.fields()
            flat = [x for kv in fields.items() for x in kv]
            label = r.label or r.status
            version, sentiment = r.prediction.model_version, r.prediction.sentiment
            await self._script(
                keys=[
                    keys.post(r.id),
                    keys.seen(version, r.id),
                    keys.counts(version, self.bucket(r.created_at)),
                    keys.totals(version),
                    keys.feed(),
                    keys.hours(version, self.bucket(r.created_at, HOUR_S)),
                ],
                args=[
                    self.ttl_s,
                    f"{r.source}|{r.channel}|{label}",
                    self.count_ttl_s,
                    self.feed_maxlen,
                    len(flat),
                    *flat,
                    label,
                    f"{r.source}|{r.channel}|{SENTIMENT_MARK}{sentiment}" if sentiment else "",
                ],
                client=pipe,
            )
        return [bool(x) for x in await pipe.execute()]

    async def aclose(self) -> None:
        await self.client.aclose()
