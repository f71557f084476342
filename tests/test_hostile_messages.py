"""Hostile and odd messages through a real worker: bad ones are dead-lettered with a
reason, odd-but-valid ones are classified, the valid posts around them are unaffected."""

import json
from base64 import b64decode

import redis
from helpers import dead_letters, metric, wait_for, wire_record
from kafka import KafkaProducer

from emostream.testing import create_topics

NOW = "2026-11-24T08:00:00Z"


BAD = {
    b"{": "invalid_json",
    b"\xff\xfe\x00": "invalid_json",
    b"null": "invalid_schema",
    b"[1, 2]": "invalid_schema",
    b'"a string"': "invalid_schema",
    b"": "invalid_json",
    wire_record("t:int-id", id=5): "invalid_schema",
    wire_record("t:num-text", text=42): "invalid_schema",
    json.dumps(
        {"v": 1, "id": "t:no-source", "created_at": NOW, "ingested_at": NOW, "text": "x"}
    ).encode(): "invalid_schema",
    wire_record("t:v2", v=2): "unknown_version",
    wire_record("t:v-1", v=-1): "unknown_version",
    wire_record("t:vstr", v="1"): "invalid_schema",
    wire_record("t:empty", text=""): "empty_post",
    wire_record("t:blank", text=" \n\t "): "empty_post",
    wire_record("t:no-tz", created_at="2026-11-24T08:00:00"): "naive_timestamp",
    wire_record("t:huge", text="x" * (10 * 1024 * 1024)): "message_too_large",
    wire_record("t:long", text="word " * 9000): "text_too_long",
    wire_record("t:bad-src", source="myspace"): "bad_source",
    wire_record("t\nnewline"): "bad_id",
}

ODD = {
    "t:rtl": "\u202egnp.exe hello \u202c world",
    "t:zero-width": "he\u200bll\u200do \ufeff",
    "t:emoji": "😂😂😂 🔥🔥 💀",
    "t:control": "bell\x07 and nul\x00 and esc\x1b[31m",
    "t:combining": "Z̸̢̛̖a̷͓̓l̶̰̈g̸̳̓o̴̮͑",
    "t:cjk": "今日はとても嬉しいです",
    "t:one-char": "!",
}


def test_hostile_messages_never_stop_the_worker(broker, redis_server, worker_process, unique):
    topic, dlq = unique("posts"), unique("dead")
    create_topics(broker, {topic: 1, dlq: 1})
    w = worker_process(
        broker,
        redis_server.port,
        topic_posts=topic,
        topic_dead_letter=dlq,
        consumer_group=unique("g"),
        max_batch=8,
    )
    producer = KafkaProducer(
        bootstrap_servers=broker, acks="all", max_request_size=20 * 1024 * 1024
    )
    good = []
    for n, (value, _) in enumerate(BAD.items()):  # a valid post between every bad one
        producer.send(topic, key=b"k", value=value)
        good.append(f"t:good-{n}")
        producer.send(topic, key=good[-1].encode(), value=wire_record(good[-1]))
    for pid, text in ODD.items():
        producer.send(topic, key=pid.encode(), value=wire_record(pid, text=text))
    producer.flush()
    producer.close()

    r = redis.Redis(port=redis_server.port, decode_responses=True)
    valid = good + list(ODD)
    wait_for(lambda: len(r.keys("emo:post:*")) >= len(valid), proc=w, what="valid posts")
    wait_for(lambda: sum(v for k, v in _dead(w).items()) >= len(BAD), proc=w, what="dead letters")
    assert w.poll() is None
    assert sorted(r.keys("emo:post:*")) == sorted(f"emo:post:{i}" for i in valid)
    for pid in valid:  # Japanese: written, but not read by an English model (no picture)
        want = "unsupported_language" if pid == "t:cjk" else "classified"
        assert r.hget(f"emo:post:{pid}", "status") == want, pid
    assert r.hget("emo:post:t:cjk", "language") == "ja"
    assert r.hget("emo:post:t:rtl", "text").startswith("\u202e")

    dead = dead_letters(broker, dlq, unique("probe"))
    assert len(dead) == len(BAD)
    got = sorted((b64decode(d["original_b64"] or "")[:60], d["reason"]) for d in dead)
    assert got == sorted((k[:60], v) for k, v in BAD.items())


def _dead(w) -> dict:
    from helpers import metrics

    try:
        return {
            k: v
            for k, v in metrics(w.metrics_port).items()
            if k.startswith("emostream_posts_dead_lettered_total")
        }
    except OSError:
        return {}


def test_metric_helper_reads_absent_as_zero():
    assert metric(1, "emostream_nothing") == 0.0
