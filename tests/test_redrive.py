"""``emostream deadletters``: list and filter the dead-letter topic, show one, re-drive the
chosen originals to a real worker; re-driving twice counts each post once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
from helpers import metric, wait_for, written
from kafka import KafkaProducer

from emostream.record import RecordError, encode, make_post, now
from emostream.testing import create_topics
from emostream.worker.deadletters.payload import DEAD_LETTER_ORIGINAL_BYTES, dead_letter_payload


def cli(broker: str, topic: str, dlq: str, *args: str) -> str:
    env = {
        **os.environ,
        "EMOSTREAM_KAFKA_BOOTSTRAP": broker,
        "EMOSTREAM_TOPIC_POSTS": topic,
        "EMOSTREAM_TOPIC_DEAD_LETTER": dlq,
    }
    out = subprocess.run(
        [sys.executable, "-m", "emostream.cli", "deadletters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def dead_lettered(broker, unique):
    """A posts topic and a dead-letter topic holding: three valid posts dead-lettered by a
    (since fixed) internal error, two undecodable messages, one truncated original."""
    topic, dlq = unique("posts"), unique("dead")
    create_topics(broker, {topic: 2, dlq: 1})
    posts = [
        make_post(id=f"rd:{i}", source="reddit", created_at=now(), text=f"post {i}")
        for i in range(3)
    ]
    letters = [
        (p.id.encode(), encode(p), RecordError("internal_error", "classify: RuntimeError"))
        for p in posts
    ] + [
        (b"x", b"{not json", RecordError("invalid_json", "")),
        (b"y", b"\xff", RecordError("invalid_json", "")),
        (b"z", b"{" + b" " * DEAD_LETTER_ORIGINAL_BYTES + b"}", RecordError("internal_error")),
    ]
    producer = KafkaProducer(bootstrap_servers=broker, acks="all", max_request_size=2 << 20)
    for key, value, err in letters:
        producer.send(dlq, key=key, value=dead_letter_payload(key, value, err))
    producer.flush()
    producer.close()
    return topic, dlq, [p.id for p in posts]


def test_list_filters_and_show(broker, dead_lettered):
    topic, dlq, _ = dead_lettered
    everything = cli(broker, topic, dlq, "list")
    assert "6 of 6 dead letters" in everything
    assert "2 of 6" in cli(broker, topic, dlq, "list", "--reason", "invalid_json")
    assert "0 of 6" in cli(broker, topic, dlq, "list", "--since", "2999-01-01T00:00:00Z")
    shown = cli(broker, topic, dlq, "show", "0:3")
    assert "invalid_json" in shown and "{not json" in shown


def test_redrive_after_a_fix_writes_each_post_once(
    broker, redis_server, worker_process, unique, dead_lettered
):
    topic, dlq, ids = dead_lettered
    w = worker_process(
        broker,
        redis_server.port,
        topic_posts=topic,
        topic_dead_letter=unique("dead2"),
        consumer_group=unique("g"),
    )
    out = cli(broker, topic, dlq, "redrive", "--reason", "internal_error")
    assert "re-drove 3" in out and "skipped 1 truncated: 0:5" in out
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    wait_for(lambda: written(r) >= 3, proc=w, what="the re-driven posts")
    cli(broker, topic, dlq, "redrive", "--reason", "internal_error")  # again: idempotent
    wait_for(
        lambda: metric(w.metrics_port, "emostream_posts_duplicate_total") >= 3,
        proc=w,
        what="the second re-drive seen as duplicates",
    )
    assert sorted(r.keys("emo:post:*")) == sorted(f"emo:post:{i}" for i in ids)
    assert written(r) == 3
