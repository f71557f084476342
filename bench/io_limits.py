"""Ingest producer posts/s and Redis write posts/s, beside the model's rate.

    python -m bench.io_limits [--posts 20000]

Shows that neither Kafka ingest nor the Redis writes are the bottleneck: the producer
sends ``--posts`` wire records to a local Tansu broker (acks=all, gzip, linger 20 ms);
the store writes the same number of results with the worker's Lua script in pipelines of
32 to a local redis-server. The model's rate for comparison is read from
bench/results/pipeline.json when present. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import REPO
from emostream.ingest.producer import PostProducer
from emostream.ingest.settings import IngestSettings
from emostream.model.prediction import Prediction
from emostream.record import make_post, now
from emostream.testing import create_topics, start_redis, start_tansu
from emostream.worker.store import Result, ResultStore


def producer_rate(n: int) -> float:
    broker = start_tansu()
    try:
        bootstrap = f"127.0.0.1:{broker.port}"
        create_topics(bootstrap, {"bench": 8})
        posts = [
            make_post(
                id=f"bench:{i}",
                source="reddit",
                channel="r/bench",
                created_at=now(),
                text=f"a post of ordinary length, number {i}",
            )
            for i in range(n)
        ]
        producer = PostProducer(
            IngestSettings(
                env={}, kafka_bootstrap=bootstrap, topic_posts="bench", ingest_metrics_port=0
            ),
            "bench",
        )
        t0 = time.perf_counter()
        for p in posts:
            producer.send(p)
        producer.flush()
        seconds = time.perf_counter() - t0
        producer.close()
        assert producer.stats.acked == n, producer.stats
        return n / seconds
    finally:
        broker.stop()


def redis_rate(n: int, batch: int) -> float:
    store_proc = start_redis(Path(tempfile.mkdtemp(prefix="emostream-bench-")))
    t = datetime.now(UTC)
    results = [
        Result(
            id=f"bench:{i}",
            source="reddit",
            channel="r/bench",
            created_at=t,
            ingested_at=t,
            written_at=t,
            prediction=Prediction(
                label="joy",
                emotions={"joy": 0.7, "anger": 0.3},
                sentiment="positive",
                sentiments={"positive": 0.9, "negative": 0.1},
                modalities=("text",),
                image_status="absent",
                model_version="bench",
            ),
            text="a post",
        )
        for i in range(n)
    ]

    async def go() -> float:
        store = ResultStore.from_url(f"redis://127.0.0.1:{store_proc.port}/0")
        try:
            t0 = time.perf_counter()
            for s in range(0, n, batch):
                await store.write(results[s : s + batch])
            return n / (time.perf_counter() - t0)
        finally:
            await store.aclose()

    try:
        return asyncio.run(go())
    finally:
        store_proc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--posts", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/io_limits.json")
    args = ap.parse_args()
    produced = producer_rate(args.posts)
    stored = redis_rate(args.posts, args.batch)
    model = None
    pipeline_json = REPO / "bench/results/pipeline.json"
    if pipeline_json.is_file():
        model = json.loads(pipeline_json.read_text())["model_alone_batched_posts_per_s"]
    print(f"{'stage':<44} {'posts/s':>9}")
    print(f"{'ingest producer -> Kafka (Tansu), acks=all':<44} {produced:>9.0f}")
    print(
        f"{'Redis writes (Lua per post, pipeline of ' + str(args.batch) + ')':<44} {stored:>9.0f}"
    )
    if model:
        print(f"{'model alone, CPU (bench/results/pipeline.json)':<44} {model:>9.1f}")
    out = {
        "posts": args.posts,
        "producer_posts_per_s": produced,
        "redis_posts_per_s": stored,
        "model_posts_per_s": model,
        "batch": args.batch,
    }
    args.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
