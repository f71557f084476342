"""A replay on the streaming engine: files onto a replay topic, two workers of their own
group write into the run's namespace, progress comes from the committed offsets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis
from helpers import metrics, text_posts, wait_for, written

from emostream.testing import create_topics
from emostream.worker.replay.progress import progress
from emostream.worker.settings import WorkerSettings

CLASSIFIED = "emostream_posts_classified_total"


def test_two_workers_drain_a_replay_topic_into_the_runs_namespace(
    broker, redis_server, worker_process, data_dir, unique, tmp_path
):
    posts = text_posts(data_dir, 600, "rg")
    topic, group, run = unique("replay"), unique("replay-g"), "big"
    create_topics(broker, {topic: 4})
    workers = [
        worker_process(
            broker, redis_server.port, topic_posts=topic, consumer_group=group, run_id=run
        )
        for _ in range(2)
    ]
    src = tmp_path / "history.jsonl"
    src.write_text("".join(json.dumps(
        {"id": p.id, "source": p.source, "channel": p.channel, "text": p.text}) + "\n"
        for p in posts))  # fmt: skip
    env = {
        **os.environ,
        "EMOSTREAM_KAFKA_BOOTSTRAP": broker,
        "EMOSTREAM_TOPIC_POSTS": topic,
        "EMOSTREAM_INGEST_METRICS_PORT": "0",
    }
    out = subprocess.run(
        [sys.executable, "-m", "emostream.cli", "ingest", "replay", str(src),
         "--run-id", run, "--quiet"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr

    r = redis.Redis(port=redis_server.port, decode_responses=True)
    wait_for(lambda: written(r, f"emo:replay:{run}") >= 600, what="the replay", every_s=1.0)
    settings = WorkerSettings(env={}, kafka_bootstrap=broker)
    wait_for(lambda: progress(settings, topic, group).left == 0, what="offsets committed")
    done = progress(settings, topic, group)
    assert (done.done, done.total) == (600, 600) and sorted(done.partitions) == [0, 1, 2, 3]
    assert written(r, f"emo:replay:{run}") == 600 and len(r.keys(f"emo:replay:{run}:post:*")) == 600
    assert r.keys("emo:post:*") == [] and written(r, "emo") == 0  # nothing in the live keys
    by_worker = [
        sum(v for k, v in metrics(w.metrics_port).items() if k.startswith(CLASSIFIED))
        for w in workers
    ]
    not_read = sum(  # research comments in another language: written, not classified
        r.hget(k, "status") == "unsupported_language" for k in r.keys(f"emo:replay:{run}:post:*")
    )
    assert all(n > 0 for n in by_worker) and sum(by_worker) + not_read == 600, by_worker
