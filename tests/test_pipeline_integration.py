"""The whole pipeline with real parts: Tansu broker, redis-server, ingest and worker processes.

Posts from ../shared/data (both modalities, text only, image only, broken images) are
replayed by ``emostream ingest replay`` and classified by ``emostream worker``; then a
second worker in a new group re-reads everything (redelivery) and must change nothing.
"""

import json
import os
import subprocess
import sys
from base64 import b64decode
from pathlib import Path

import pytest
import redis
import torch
from helpers import dead_letters, metric, metrics, wait_for
from kafka import KafkaProducer

from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset
from emostream.model.training.labels import EMOTIONS
from emostream.model.weights import Weights
from emostream.testing import create_topics, serve_directory

REPO = Path(__file__).resolve().parent.parent
RUN = "itest"


def build_posts(data_dir: Path) -> list[dict]:
    """~24 posts of four kinds, with what each must come out as."""
    rows = []

    def add(item, kind, text, image, expect_mods, expect_status):
        rows.append(
            {
                "id": f"it:{item.dataset}/{item.id}",
                "source": "twitter"
                if "twitter" in item.dataset or "mvsa" in item.dataset
                else "reddit",
                "channel": item.dataset,
                "text": text,
                "image": image,
                "_kind": kind,
                "_mods": expect_mods,
                "_status": expect_status,
            }
        )

    mvsa = Dataset.load("mvsa-single", data_dir).split("test")
    for it in mvsa[:6]:
        add(it, "both", it.text, f"mvsa-single/images/{it.id}.jpg", "text,image", "ok")
    for it in mvsa[6:9]:  # the picture is missing on the server: 404
        add(it, "broken", it.text, "mvsa-single/images/missing.jpg", "text", "error:http_status")
    for it in Dataset.load("twitter-ii", data_dir).split("test")[:4]:
        add(it, "image", None, f"twitter-ii/images/{it.id}.jpg", "image", "ok")
    for it in Dataset.load("emotion6", data_dir).split("test")[:4]:
        add(it, "image", None, f"emotion6/images/{it.id}.jpg", "image", "ok")
    for it in Dataset.load("reddit-emotions", data_dir).split("test")[:6]:
        add(it, "text", it.text, None, "text", "absent")
    it = Dataset.load("emotion6", data_dir).split("test")[10]
    add(it, "nothing", None, "emotion6/images/not-there.jpg", "", "error:http_status")
    return rows


def snapshot(r: redis.Redis) -> dict:
    return {k: r.dump(k) for k in sorted(r.keys("*"))}


@pytest.fixture
def data_server(data_dir):
    srv = serve_directory(data_dir)
    yield srv.url
    srv.stop()


def test_every_post_has_exactly_one_correct_result(
    broker, redis_server, worker_process, data_dir, data_server, unique, tmp_path
):
    posts = build_posts(data_dir)
    n = len(posts)
    topic, dlq = unique("posts"), unique("dead")
    create_topics(broker, {topic: 2, dlq: 1})
    # a replay worker group: its results go to the run's namespace (EMOSTREAM_RUN_ID)
    common = {"topic_posts": topic, "topic_dead_letter": dlq, "max_batch": 8, "run_id": RUN}
    first = worker_process(broker, redis_server.port, consumer_group=unique("g"), **common)

    src = tmp_path / "posts.jsonl"
    src.write_text(
        "".join(
            json.dumps({k: v for k, v in p.items() if not k.startswith("_")}) + "\n" for p in posts
        )
    )
    env = {
        **os.environ,
        "EMOSTREAM_KAFKA_BOOTSTRAP": broker,
        "EMOSTREAM_TOPIC_POSTS": topic,
        "EMOSTREAM_INGEST_METRICS_PORT": "0",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "emostream.cli",
            "ingest",
            "replay",
            str(src),
            "--run-id",
            RUN,
            "--image-base-url",
            data_server,
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    assert f"sent {n}, acknowledged {n}, failed 0" in out.stdout

    bad = [
        b"{not json",
        b'{"v": 7, "id": "x"}',
        json.dumps(
            {
                "v": 1,
                "id": "it:empty",
                "source": "reddit",
                "created_at": "2026-01-01T00:00:00Z",
                "ingested_at": "2026-01-01T00:00:00Z",
                "text": "  ",
            }
        ).encode(),
    ]
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    for b in bad:
        producer.send(topic, key=b"bad", value=b)
    producer.flush()
    producer.close()

    r = redis.Redis(port=redis_server.port, decode_responses=True)
    prefix = f"emo:replay:{RUN}"
    wait_for(lambda: len(r.keys(f"{prefix}:post:*")) >= n, what=f"{n} results", proc=first)

    # exactly one result per post, with the modalities and image status it must have
    keys = r.keys(f"{prefix}:post:*")
    assert sorted(keys) == sorted(f"{prefix}:post:{p['id']}" for p in posts)
    version = Weights.DEFAULT.version
    results = {p["id"]: r.hgetall(f"{prefix}:post:{p['id']}") for p in posts}
    for p in posts:
        res = results[p["id"]]
        assert res["modalities"] == p["_mods"], (p["id"], res)
        assert res["image_status"] == p["_status"], (p["id"], res)
        assert res["model_version"] == version and res["run_id"] == RUN
        if p["_kind"] == "nothing":
            assert res["status"] == "unclassifiable" and res["label"] == ""
        else:
            assert res["status"] == "classified" and res["label"] in EMOTIONS
            assert abs(sum(json.loads(res["emotions"]).values()) - 1) < 1e-3

    # the worker's predictions are the classifier's, offline, on the same inputs
    clf = EmotionClassifier(device="cpu")
    for p in [q for q in posts if q["_kind"] in ("both", "image", "text")][::3]:
        image = (data_dir / p["image"]).read_bytes() if p["image"] else None
        offline = clf.classify([PostInput(p["text"], image)])[0]
        online = json.loads(results[p["id"]]["emotions"])
        torch.testing.assert_close(
            torch.tensor(list(online.values())),
            torch.tensor(list(offline.emotions.values())),
            atol=3e-3,
            rtol=0,
        )

    # counts equal the number of distinct posts; the live namespace is untouched
    totals = {k: int(v) for k, v in r.hgetall(f"{prefix}:totals:{version}").items()}
    assert sum(totals.values()) == n and totals.get("unclassifiable") == 1
    emotion_counts = [
        int(v)
        for k in r.keys(f"{prefix}:counts:{version}:*")
        for f, v in r.hgetall(k).items()
        if "|s:" not in f  # sentiment fields count the same posts again, by sentiment
    ]
    assert sum(emotion_counts) == n and r.xlen(f"{prefix}:feed") == n
    assert not r.keys("emo:post:*")

    # malformed messages reached the dead-letter topic with their reasons
    dead = dead_letters(broker, dlq, unique("probe"))
    assert sorted(d["reason"] for d in dead) == ["empty_post", "invalid_json", "unknown_version"]
    assert {b64decode(d["original_b64"]) for d in dead} == set(bad)

    # /metrics tells the same story
    mt = metrics(first.metrics_port)
    classified = sum(v for k, v in mt.items() if k.startswith("emostream_posts_classified_total"))
    assert classified == n - 1
    assert mt['emostream_posts_unclassifiable_total{reason="http_status"}'] == 1
    assert mt['emostream_posts_dead_lettered_total{reason="invalid_json"}'] == 1
    assert mt['emostream_image_failures_total{reason="http_status"}'] == 4
    assert mt["emostream_end_to_end_seconds_count"] == n

    # redelivery: a new group re-reads every message; nothing in Redis changes
    before = snapshot(r)
    first.terminate()
    first.wait(60)
    second = worker_process(broker, redis_server.port, consumer_group=unique("g"), **common)
    wait_for(lambda: _duplicates(second.metrics_port) >= n, what="redelivered batch", proc=second)
    assert snapshot(r) == before


def _duplicates(port: int) -> float:
    return metric(port, "emostream_posts_duplicate_total")
