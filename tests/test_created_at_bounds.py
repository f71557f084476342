"""A post's created_at out of range (year 1, epoch 0, year 9999, days ahead) is counted at
its ingested_at and flagged, never in a time bucket of its own; offsets up to ±23:59 are
read as the instants they are."""

from datetime import UTC, datetime, timedelta

import pytest
import redis
from helpers import metric, wait_for, wire_record
from kafka import KafkaProducer

from emostream.record import EARLIEST_CREATED_AT, bounded_created_at, decode
from emostream.testing import create_topics

RECEIVED = datetime(2026, 11, 24, 8, 0, 5, tzinfo=UTC)
INGESTED = "2026-11-24T08:00:00Z"


def post(created_at: str, ingested_at: str = INGESTED):
    return decode(wire_record("t:1", created_at=created_at, ingested_at=ingested_at))


@pytest.mark.parametrize(
    "created_at,kept",
    [
        ("0001-01-01T00:00:00Z", False),
        ("1970-01-01T00:00:00Z", False),  # epoch 0: Flickr's missing upload date
        ("2003-12-31T23:59:59Z", False),
        ("9999-12-31T23:59:59Z", False),
        ("2026-11-25T08:00:06Z", False),  # a day and a second ahead
        ("2004-01-01T00:00:00Z", True),
        ("2026-11-24T08:00:00+23:59", True),  # 2026-11-23T08:01Z
        ("2026-11-24T08:00:00-23:59", True),  # 2026-11-25T07:59Z: within a day ahead
        ("2026-11-24T07:59:00Z", True),
    ],
)
def test_created_at_out_of_range_becomes_the_ingest_time(created_at, kept):
    original = post(created_at)
    bounded, given = bounded_created_at(original, RECEIVED)
    if kept:
        assert bounded == original and given == ""
        assert EARLIEST_CREATED_AT <= bounded.created_at <= RECEIVED + timedelta(days=1)
    else:
        assert bounded.created_at == original.ingested_at
        assert given == original.created_at.isoformat()
        assert bounded.id == original.id and bounded.text == original.text


def test_offsets_are_read_as_instants():
    east = post("2026-11-24T08:00:00+23:59").created_at
    west = post("2026-11-24T08:00:00-23:59").created_at
    assert east == datetime(2026, 11, 23, 8, 1, tzinfo=UTC)
    assert west == datetime(2026, 11, 25, 7, 59, tzinfo=UTC)


def test_an_ingest_time_out_of_range_too_gives_the_receive_time():
    bounded, _ = bounded_created_at(post("9999-01-01T00:00:00Z", "0001-01-01T00:00:00Z"), RECEIVED)
    assert bounded.created_at == RECEIVED


def test_through_a_worker_no_post_is_counted_in_a_bucket_out_of_range(
    broker, redis_server, worker_process, unique
):
    topic = unique("posts")
    create_topics(broker, {topic: 1})
    w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=unique("g"))
    now = datetime.now(UTC).replace(microsecond=0)
    ingested = now.isoformat().replace("+00:00", "Z")
    sent = {
        "t:year-1": "0001-01-01T00:00:00Z",
        "t:epoch-0": "1970-01-01T00:00:00Z",
        "t:year-9999": "9999-12-31T23:59:59Z",
        "t:east": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+23:59"),
        "t:west": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S-23:59"),
    }
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    for pid, created in sent.items():
        value = wire_record(pid, created_at=created, ingested_at=ingested, text="so happy today")
        producer.send(topic, key=pid.encode(), value=value)
    producer.flush()
    producer.close()

    r = redis.Redis(port=redis_server.port, decode_responses=True)
    wait_for(lambda: len(r.keys("emo:post:*")) == len(sent), proc=w, what="every post")
    for pid in ("t:year-1", "t:epoch-0", "t:year-9999"):
        stored = r.hgetall(f"emo:post:{pid}")
        assert stored["created_at"] == now.isoformat(), pid
        assert stored["created_at_given"].startswith(sent[pid][:4]), pid
    for pid in ("t:east", "t:west"):
        assert "created_at_given" not in r.hgetall(f"emo:post:{pid}")
    buckets = [int(k.rsplit(":", 1)[1]) for k in r.keys("emo:counts:*")]
    assert buckets and all(
        now.timestamp() - 3 * 86400 < b < now.timestamp() + 86400 for b in buckets
    )
    assert metric(w.metrics_port, "emostream_created_at_replaced_total") == 3
