"""Messages that once stopped a partition for good, each alone between two valid posts,
through a real worker: every one is dead-lettered with its reason or classified, and every
valid post around them is written."""

from __future__ import annotations

import threading
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import pytest
import redis
from helpers import dead_letters, metrics, png_header, wait_for, wire_record
from kafka import KafkaProducer
from PIL import Image

from emostream.testing import create_topics

NOW = "2026-11-24T08:00:00Z"


def raw_in(pid: str, field: str, raw: bytes) -> bytes:
    """A post whose string ``field`` holds ``raw`` bytes (not valid UTF-8)."""
    return wire_record(pid, **{field: "SLOT"}).replace(b"SLOT", raw)


DEEP = b"[" * 1000 + b"]" * 1000
PILLS = {
    raw_in("p:text", "text", b"bad \xff byte"): "invalid_utf8",
    raw_in("p:cesu", "text", b"\xed\xa0\x80"): "invalid_utf8",
    raw_in("SLOT", "id", b"p:\xffid"): "invalid_utf8",
    raw_in("p:chan", "channel", b"r/\xff"): "invalid_utf8",
    raw_in("p:src", "source", b"reddit\xff"): "invalid_utf8",
    raw_in("p:url", "image_url", b"http://x/\xff.jpg"): "invalid_utf8",
    wire_record("p:meta", meta={"SLOT": 1}).replace(b"SLOT", b"k\xff"): "invalid_utf8",
    wire_record("p:zz")[:-1] + b', "zz": ' + DEEP + b"}": "too_deep",
    wire_record("p:dmeta")[:-1] + b', "meta": {"a": ' + DEEP + b"}}": "too_deep",
    b'{"a":' * 1000 + b"1" + b"}" * 1000: "too_deep",
    wire_record("p:pipe", channel="r/a|joy"): "bad_channel",
}


class Pictures(BaseHTTPRequestHandler):
    """Loopback pictures: a 1 x 39,000,000 PNG header, a 1 x 4,000 strip, an empty body."""

    protocol_version = "HTTP/1.1"
    bodies: dict[str, bytes] = {}

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        body = self.bodies.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def pictures():
    strip = BytesIO()
    Image.new("RGB", (1, 4000)).save(strip, "PNG")
    Pictures.bodies = {
        "/tall.png": png_header(1, 39_000_000) + b"\x00" * 75_000,
        "/strip.png": strip.getvalue(),
        "/empty.png": b"",
    }
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Pictures)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_no_message_stops_the_partition(broker, redis_server, worker_process, unique, pictures):
    topic, dlq = unique("posts"), unique("dead")
    create_topics(broker, {topic: 1, dlq: 1})  # one partition: a stuck one shows at once
    w = worker_process(
        broker,
        redis_server.port,
        topic_posts=topic,
        topic_dead_letter=dlq,
        consumer_group=unique("g"),
        max_batch=4,
        metric_channels=3,
    )
    classified = {  # id -> (image status, label expected?)
        "i:tall": (f"{pictures}/tall.png", "text", "error:too_many_pixels"),
        "i:strip": (f"{pictures}/strip.png", "text", "error:bad_dimensions"),
        "i:empty": (f"{pictures}/empty.png", "text", "error:empty_body"),
    }
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    good = []

    def send(value: bytes, key: bytes = b"k") -> None:
        producer.send(topic, key=key, value=value)
        good.append(f"g:{len(good)}")
        channel = f"c/{len(good) % 6}"  # six channels, three series of their own
        producer.send(topic, key=good[-1].encode(), value=wire_record(good[-1], channel=channel))

    for value in PILLS:
        send(value)
    for pid, (url, _, _) in classified.items():
        send(wire_record(pid, image_url=url))
    send(wire_record("i:only-empty", text=None, image_url=f"{pictures}/empty.png"))
    send(wire_record("i:injected", run_id="victim-run"))
    send(wire_record("i:twice", text="the first"))
    send(wire_record("i:twice", text="the second"))
    producer.flush()
    producer.close()

    r = redis.Redis(port=redis_server.port, decode_responses=True)
    expected = set(good) | set(classified) | {"i:only-empty", "i:injected", "i:twice"}
    wait_for(lambda: len(r.keys("emo:post:*")) >= len(expected), proc=w, what="every post")
    dead = dead_letters(broker, dlq, unique("probe"))
    assert w.poll() is None, "the worker stopped"
    assert sorted(r.keys("emo:post:*")) == sorted(f"emo:post:{i}" for i in expected)
    assert sorted((b64decode(d["original_b64"]), d["reason"]) for d in dead) == sorted(
        PILLS.items()
    )
    for pid, (_, mods, status) in classified.items():
        assert r.hget(f"emo:post:{pid}", "image_status") == status, pid
        assert r.hget(f"emo:post:{pid}", "modalities") == mods, pid
    only = r.hgetall("emo:post:i:only-empty")
    assert only["status"] == "unclassifiable" and only["image_status"] == "error:empty_body"
    assert r.keys("emo:replay:*") == []  # the run id of a live message is ignored
    assert r.hget("emo:post:i:twice", "text") == "the first"

    series = [k for k in metrics(w.metrics_port) if k.startswith("emostream_posts_by_emotion")]
    channels = {k.split('channel="')[1].split('"')[0] for k in series}
    assert len(channels) == 4 and "other" in channels, channels
