"""A replay on a worker group: one worker against two, in one run.

    python -m bench.replay_group [--posts 3000] [--workers 1 2]

For each worker count: a fresh 4-partition replay topic holding ``--posts`` GoEmotions
comments (queued before any worker starts), that many ``emostream worker`` processes in a
group of their own with ``EMOSTREAM_RUN_ID``, drained into the run's namespace in a local
redis-server. The rate is the sustained one, from the first to the last result's
``written_at`` (worker start-up excluded). Prints a table and writes
bench/results/replay_group.json with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis

from bench import REPO
from bench.machine import machine
from emostream.ingest.producer import PostProducer
from emostream.ingest.settings import IngestSettings
from emostream.model.training.datasets import Dataset
from emostream.record import make_post, now
from emostream.testing import (
    create_topics,
    free_port,
    local_worker_env,
    start_redis,
    start_tansu,
)


def drain(broker: str, redis_port: int, texts: list[str], workers: int, work: Path) -> dict:
    run = f"group{workers}"
    topic = f"replay-{run}"
    create_topics(broker, {topic: 4})
    producer = PostProducer(
        IngestSettings(env={}, kafka_bootstrap=broker, topic_posts=topic, ingest_metrics_port=0),
        "replay",
    )
    for i, text in enumerate(texts):
        producer.send(make_post(id=f"{run}:{i}", source="replay", created_at=now(), text=text))
    producer.close()
    procs = []
    for k in range(workers):
        env = local_worker_env(broker, redis_port, free_port(), topic_posts=topic, device="cpu",
                               consumer_group=f"bench-{run}", run_id=run,
                               state_dir=str(work / f"state-{run}-{k}"))  # fmt: skip
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "emostream.cli", "worker"], env={**os.environ, **env},
            stdout=open(work / f"{run}-{k}.log", "wb"), stderr=subprocess.STDOUT))  # fmt: skip
    r = redis.Redis(port=redis_port, decode_responses=True)
    prefix = f"emo:replay:{run}"
    deadline = time.monotonic() + 1800
    while len(r.keys(f"{prefix}:post:*")) < len(texts) and time.monotonic() < deadline:
        time.sleep(1)
    for p in procs:
        p.terminate()
        p.wait(60)
    stamps = sorted(
        datetime.fromisoformat(r.hget(k, "written_at")) for k in r.keys(f"{prefix}:post:*")
    )
    span = (stamps[-1] - stamps[0]).total_seconds()
    return {"workers": workers, "posts": len(stamps), "seconds": span,
            "posts_per_s": (len(stamps) - 1) / span if span else None}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=3000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/replay_group.json")
    args = ap.parse_args()
    texts = [i.text for i in Dataset.load("goemotions").split("test")[: args.posts]]
    work = Path(tempfile.mkdtemp(prefix="emostream-replay-group-"))
    tansu, store = start_tansu(), start_redis(work / "redis")
    try:
        runs = [drain(f"127.0.0.1:{tansu.port}", store.port, texts, n, work) for n in args.workers]
    finally:
        store.stop()
        tansu.stop()
    print("\n| workers | posts | seconds | posts/s |\n|---:|---:|---:|---:|")
    for x in runs:
        print(f"| {x['workers']} | {x['posts']} | {x['seconds']:.1f} | {x['posts_per_s']:.1f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine(None), "runs": runs}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
