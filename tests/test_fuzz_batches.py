"""Fuzzing whole batches: random message bytes and random picture bytes through the real
batch code (decoder, image fetch from a loopback server, decode, model, Redis store).
Every message ends written, dead-lettered or counted as a repeat, and nothing raises."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import pytest
import redis
from helpers import fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from emostream.worker.pipeline import Message


def picture(fmt: str) -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(out, fmt)
    return out.getvalue()


PICTURES = [picture(f) for f in ("PNG", "JPEG", "GIF", "WEBP")]


class Served(BaseHTTPRequestHandler):
    """GET /<n>: the n-th body of ``bodies`` as image/png (set per example)."""

    protocol_version = "HTTP/1.1"
    bodies: list[bytes] = []

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        n = int(self.path.strip("/") or 0)
        body = self.bodies[n] if n < len(self.bodies) else b""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def image_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Served)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def mutated(data: bytes, edits: list[tuple[int, int]], keep: int) -> bytes:
    out = bytearray(data[:keep])
    for pos, byte in edits:
        if out:
            out[pos % len(out)] = byte
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
pictures = st.builds(mutated, st.sampled_from(PICTURES), edits, st.integers(0, 2000))
fields = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.none(), st.text(max_size=60)),
        "channel": st.text(max_size=12),
        "id": st.text(min_size=1, max_size=8),
        "meta": st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
        "x": st.recursive(st.integers(), lambda s: st.lists(s, max_size=2), max_leaves=40),
    },
)


def message(i: int, base: str, changes: dict, noise: list[tuple[int, int]]) -> Message:
    record = {
        "v": 1,
        "id": f"f:{i}",
        "source": "flickr",
        "channel": "fuzz",
        "created_at": "2026-11-24T08:00:00Z",
        "ingested_at": "2026-11-24T08:00:00Z",
        "text": "a post",
        "image_url": f"{base}/{i}",
        **changes,
    }
    return Message(b"k", mutated(json.dumps(record).encode(), noise, 1 << 20), 0, i)


@pytest.mark.fuzz
@settings(
    max_examples=fuzz_examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(fields, edits, pictures), min_size=1, max_size=6),
)
def test_any_batch_is_accounted_for(processor, redis_server, image_server, batch):
    Served.bodies = [pic for _, _, pic in batch]
    msgs = [message(i, image_server, ch, noise) for i, (ch, noise, _) in enumerate(batch)]
    dead: list = []
    report = asyncio.run(processor(reuse_size=0, dead_letters=dead).process(msgs))
    repeated_in_batch = report.duplicates - (report.posts - report.new)
    assert report.posts + report.dead_lettered + repeated_in_batch == len(msgs)
    assert len(dead) == report.dead_lettered and repeated_in_batch >= 0
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    for res in report.results:
        stored = r.hgetall(f"emo:post:{res.id}")
        assert stored["status"] in ("classified", "unclassifiable")
        assert stored["image_status"] == "ok" or stored["image_status"].startswith("error:")
    for _, _, err in dead:
        assert err.reason != "internal_error", err  # a fuzzed input is bad input, not a bug
