"""Worker throughput through Kafka and Redis against the model alone, in one run.

    python bench/pipeline.py [--posts 256] [--batch 32] [--latency-seconds 30]

1. model alone: ``EmotionClassifier.classify`` on the same posts (image bytes in memory),
   in batches of ``--batch`` and one post at a time;
2. pipeline: the posts are queued in Kafka (Tansu) first, then a real ``emostream worker``
   drains them: fetch each picture over HTTP, decode, classify, write to Redis. Sustained
   posts/s = posts after the first batch / (last write - first write), from the results'
   ``written_at``; with ``max_batch`` = ``--batch`` and = 1;
3. latency: an open-loop producer at about half the measured pipeline capacity for
   ``--latency-seconds``; end-to-end = ``written_at - ingested_at`` per post (p50, p99).

Posts: mvsa-single test posts (text + image, from ../shared/data, served over loopback
HTTP). Prints a table and writes JSON. Figures, not tests: they depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingest.producer import PostProducer  # noqa: E402
from ingest.record import make_post, now  # noqa: E402
from ingest.settings import Settings  # noqa: E402
from model.classifier import EmotionClassifier  # noqa: E402
from model.datasets import Dataset  # noqa: E402
from model.encoder import PostInput  # noqa: E402
from worker.local_services import (  # noqa: E402
    create_topics,
    free_port,
    serve_directory,
    start_redis,
    start_tansu,
)


def model_alone(items, batch: int) -> float:
    clf = EmotionClassifier(device="cpu")
    posts = [PostInput(i.text, i.image_path.read_bytes()) for i in items]
    clf.classify(posts[:batch])  # warm-up
    t0 = time.perf_counter()
    for s in range(0, len(posts), batch):
        clf.classify(posts[s : s + batch])
    return len(posts) / (time.perf_counter() - t0)


def start_worker(bootstrap, redis_port, topic, batch, log):
    env = {
        **os.environ,
        "EMOSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "EMOSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "EMOSTREAM_TOPIC_POSTS": topic,
        "EMOSTREAM_CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:6]}",
        "EMOSTREAM_MAX_BATCH": str(batch),
        "EMOSTREAM_IMAGE_ALLOW_NETWORKS": "127.0.0.0/8",
        "EMOSTREAM_BROKER_SESSION_TIMEOUT_S": "3",  # Tansu's slow first join (KAFKA-TESTS.md)
        "EMOSTREAM_BROKER_HEARTBEAT_INTERVAL_S": "0.5",
        "EMOSTREAM_WORKER_METRICS_PORT": str(free_port()),
        "EMOSTREAM_DEVICE": "cpu",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "worker"],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    proc.metrics_port = int(env["EMOSTREAM_WORKER_METRICS_PORT"])
    return proc


def produce(bootstrap, topic, posts, rate=0.0):
    """Send posts (or zero-argument callables that build one at send time) at ``rate``."""
    settings = Settings(env={}, kafka_bootstrap=bootstrap, topic_posts=topic, ingest_metrics_port=0)
    producer = PostProducer(settings, "replay")
    t0 = time.monotonic()
    for n, p in enumerate(posts):
        if rate:
            ahead = t0 + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        producer.send(p() if callable(p) else p)  # built now: ingested_at = send time
    producer.close()
    assert producer.stats.failed == 0


def make_posts(items, base_url, tag):
    return [
        make_post(
            id=f"bench:{tag}:{i.id}",
            source="twitter",
            channel="mvsa",
            created_at=now(),
            text=i.text,
            image_url=f"{base_url}/mvsa-single/images/{i.id}.jpg",
        )
        for i in items
    ]


def results(r, tag):
    out = []
    for k in r.scan_iter(f"emo:post:bench:{tag}:*", count=1000):
        h = r.hgetall(k)
        out.append(
            (datetime.fromisoformat(h["ingested_at"]), datetime.fromisoformat(h["written_at"]))
        )
    return out


def written(r) -> int:
    """Posts written so far (one cheap HGETALL: polling must not load the machine)."""
    return sum(int(v) for k in r.keys("emo:totals:*") for v in r.hvals(k))


def drain(r, n, tag, worker, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("worker died")
        if written(r) >= n:
            return results(r, tag)
        time.sleep(1.0)
    raise TimeoutError(f"{tag}: {written(r)} of {n}")


def breakdown(port: int) -> dict[str, float]:
    """Seconds per batch spent in each stage, from the worker's own histograms."""
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    vals = {}
    for line in body.splitlines():
        if line.startswith("emostream_") and (line.split(" ")[0].endswith(("_sum", "_count"))):
            name, v = line.rsplit(" ", 1)
            vals[name] = float(v)
    batches = vals.get("emostream_batch_seconds_count", 0) or 1
    stages = ("batch", "inference", "image_decode", "redis_write")
    out = {s: vals.get(f"emostream_{s}_seconds_sum", 0) / batches for s in stages}
    out["image_fetch_each"] = vals.get("emostream_image_fetch_seconds_sum", 0) / max(
        1, vals.get("emostream_image_fetch_seconds_count", 1)
    )
    out["batches"] = batches
    out["mean_batch_size"] = vals.get("emostream_batch_size_sum", 0) / batches
    return out


def sustained_rate(got, batch):
    written = sorted(w for _, w in got)
    span = (written[-1] - written[0]).total_seconds()
    return (len(written) - batch) / span if span > 0 else float("nan")


def pipeline_run(bootstrap, redis_port, r, items, base, batch, tag, workdir):
    topic = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, {topic: 2})
    produce(bootstrap, topic, make_posts(items, base, tag))  # a backlog first
    worker = start_worker(bootstrap, redis_port, topic, batch, workdir / f"worker-{tag}.log")
    try:
        before = written(r)
        got = drain(r, before + len(items), tag, worker)
        return sustained_rate(got, batch), worker, topic
    except BaseException:
        worker.terminate()
        raise


def main() -> None:
    import redis

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--posts", type=int, default=256)
    ap.add_argument("--single-posts", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/pipeline.json")
    args = ap.parse_args()

    items = Dataset.load("mvsa-single").split("test")[: args.posts]
    print(f"model alone on {len(items)} mvsa-single posts (text + image) ...", flush=True)
    alone_batched = model_alone(items, args.batch)
    alone_single = model_alone(items[: args.single_posts], 1)

    workdir = REPO / ".cache" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    broker = start_tansu()
    store = start_redis(workdir / "redis")
    data = serve_directory(Dataset.load("mvsa-single").root.parent)
    bootstrap = f"127.0.0.1:{broker.port}"
    r = redis.Redis(port=store.port, decode_responses=True)
    try:
        print("pipeline, batched ...", flush=True)
        batched, worker, topic = pipeline_run(
            bootstrap, store.port, r, items, data.url, args.batch, "batched", workdir
        )
        stages_batched = breakdown(worker.metrics_port)
        # latency at ~half capacity, same (warm) worker
        rate = batched / 2
        n_lat = max(20, int(rate * args.latency_seconds))
        lat_items = (items * (n_lat // len(items) + 1))[:n_lat]
        lat_posts = [
            lambda it=it, k=k: make_posts([it], data.url, f"lat:{k}")[0]
            for k, it in enumerate(lat_items)
        ]
        print(f"latency at {rate:.1f} posts/s for {n_lat} posts ...", flush=True)
        produce(bootstrap, topic, lat_posts, rate=rate)
        drain(r, len(items) + n_lat, "lat", worker, timeout=600)
        lat = [(w - i).total_seconds() for i, w in results(r, "lat")]
        worker.terminate()
        worker.wait(60)

        print("pipeline, one post at a time ...", flush=True)
        single, worker, _ = pipeline_run(
            bootstrap, store.port, r, items[: args.single_posts], data.url, 1, "single", workdir
        )
        stages_single = breakdown(worker.metrics_port)
        worker.terminate()
        worker.wait(60)
    finally:
        broker.stop()
        store.stop()
        data.stop()

    out = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "device": "cpu",
        },
        "posts": len(items),
        "batch": args.batch,
        "model_alone_batched_posts_per_s": alone_batched,
        "model_alone_single_posts_per_s": alone_single,
        "pipeline_batched_posts_per_s": batched,
        "pipeline_single_posts_per_s": single,
        "pipeline_over_model": batched / alone_batched,
        "batched_over_single": batched / single,
        "latency_load_posts_per_s": rate,
        "latency_p50_s": float(np.percentile(lat, 50)),
        "latency_p99_s": float(np.percentile(lat, 99)),
        "latency_posts": len(lat),
        "stages_batched": stages_batched,
        "stages_single": stages_single,
    }
    print(f"\n{'':<34} {'posts/s':>8}")
    print(f"{'model alone, batch ' + str(args.batch):<34} {alone_batched:>8.1f}")
    print(f"{'model alone, batch 1':<34} {alone_single:>8.1f}")
    print(
        f"{'pipeline (Kafka+HTTP+Redis), batch ' + str(args.batch):<34} {batched:>8.1f}"
        f"   {100 * batched / alone_batched:.0f}% of model alone"
    )
    print(f"{'pipeline, batch 1':<34} {single:>8.1f}   batched is {batched / single:.1f}x")
    print(
        f"latency at {rate:.1f} posts/s (~50% of capacity), {len(lat)} posts: "
        f"p50 {out['latency_p50_s']:.2f} s, p99 {out['latency_p99_s']:.2f} s"
    )
    for name, st in (("batched", stages_batched), ("one at a time", stages_single)):
        print(
            f"per batch ({name}, mean {st['mean_batch_size']:.1f} posts): "
            f"total {st['batch']:.3f} s = inference {st['inference']:.3f} s + decode "
            f"{st['image_decode']:.3f} s + redis {st['redis_write']:.3f} s + fetch etc.; "
            f"one image fetch {st['image_fetch_each']:.3f} s"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
