"""The whole pipeline through Kafka and Redis against the model alone, in one run.

    python -m bench.pipeline [--posts 256] [--batch 32] [--load-seconds 20]
                             [--loads 0.25 0.5 0.75 1.0]

1. **model alone**: ``EmotionClassifier.classify`` on the same posts (image bytes in
   memory, so decoding included), in batches of ``--batch`` and one post at a time;
2. **throughput**: the posts are queued in Kafka (Tansu) first, then a real
   ``emostream worker`` drains them: fetch each picture over HTTP, decode, classify,
   write to Redis. Sustained posts/s = posts after the first batch / (last write - first
   write), from the results' ``written_at``. Workers: adaptive batching (the default),
   fixed batches (faust's ``noack_take``, the previous worker), and one post at a time;
3. **latency**: an open-loop producer (sends on a schedule, whether or not the worker
   keeps up) at 25/50/75/100% of the adaptive worker's measured capacity, for
   ``--load-seconds`` each, against the adaptive and the fixed worker; end-to-end =
   ``written_at - ingested_at`` per post (p50/p95/p99), the worker's share
   ``written_at - received_at``, and the target ``max_wait + 2 x the batch's compute
   time`` from the worker's own histograms. The difference is the broker's delivery:
   Tansu does not answer a waiting fetch as soon as data arrives (with faust's 1.5 s
   fetch wait, 0.40 s median and 0.77 s at most; ``bench/broker_delivery.py``), where
   Apache Kafka answers at once; so the worker's share is the figure that carries over
   to production;
4. **repeats**: a stream where every post appears twice (retweets, reposts) with
   feature reuse on and off.

Feature reuse is off in 2 and 3 (every post is encoded), so repeats of the same 256
pictures do not flatter them. Posts: mvsa-single test posts (text + image, from
../shared/data, served over loopback HTTP). Prints tables and writes JSON
(bench/results/pipeline.json). Figures, not tests: they depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np

from bench import REPO
from bench.machine import machine
from emostream.ingest.producer import PostProducer
from emostream.ingest.settings import IngestSettings
from emostream.model.classifier import EmotionClassifier
from emostream.model.encoder import PostInput
from emostream.model.training.datasets import Dataset
from emostream.record import make_post, now
from emostream.testing import (
    create_topics,
    free_port,
    local_worker_env,
    serve_directory,
    start_redis,
    start_tansu,
)

DEVICE = "cpu"
"""The model's and the worker's device (``--device``)."""


def model_alone(items, batch: int) -> float:
    clf = EmotionClassifier(device=DEVICE)
    posts = [PostInput(i.text, i.image_path.read_bytes()) for i in items]
    clf.classify(posts[:batch])  # warm-up
    t0 = time.perf_counter()
    for s in range(0, len(posts), batch):
        clf.classify(posts[s : s + batch])
    return len(posts) / (time.perf_counter() - t0)


def start_worker(bootstrap, redis_port, topic, log, **settings):
    env = local_worker_env(
        bootstrap,
        redis_port,
        free_port(),
        **{
            "topic_posts": topic,
            "consumer_group": f"bench-{uuid.uuid4().hex[:6]}",
            "device": DEVICE,
            "feature_reuse_size": 0,
            **settings,
        },
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "emostream.cli", "worker"],
        env={**os.environ, **env},
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),  # not the bench's nice
    )
    proc.metrics_port = int(env["EMOSTREAM_WORKER_METRICS_PORT"])
    return proc


def stop(worker) -> None:
    worker.terminate()
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)


def produce(bootstrap, topic, posts, rate=0.0):
    """Send posts (or zero-argument callables that build one at send time) at ``rate``
    posts/s on a fixed schedule (open loop), or as fast as possible."""
    settings = IngestSettings(
        env={}, kafka_bootstrap=bootstrap, topic_posts=topic, ingest_metrics_port=0
    )
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
            id=f"bench:{tag}:{k}:{i.id}",
            source="twitter",
            channel="mvsa",
            created_at=now(),
            text=i.text,
            image_url=f"{base_url}/mvsa-single/images/{i.id}.jpg",
        )
        for k, i in enumerate(items)
    ]


RESULT_TIMES = ("ingested_at", "received_at", "written_at")


def results(r, tag):
    """(ingested_at, received_at, written_at) of each post of ``tag``."""
    out = []
    for k in r.scan_iter(f"emo:post:bench:{tag}:*", count=1000):
        h = r.hgetall(k)
        out.append(tuple(datetime.fromisoformat(h[f]) for f in RESULT_TIMES))
    return out


def written(r) -> int:
    """Posts written so far (one cheap HGETALL: polling must not load the machine)."""
    return sum(int(v) for k in r.keys("emo:totals:*") for v in r.hvals(k))


def drain(r, n, worker, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("worker died")
        if written(r) >= n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{written(r)} of {n}")


def histograms(port: int) -> dict[str, float]:
    """The worker's _sum and _count samples (and batch-size buckets), by name."""
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    vals = {}
    for line in body.splitlines():
        name = line.split(" ")[0]
        if line.startswith("emostream_") and name.endswith(("_sum", "_count")):
            vals[name] = float(line.rsplit(" ", 1)[1])
    return vals


def stages(before: dict, after: dict) -> dict[str, float]:
    """Seconds per batch in each stage between two snapshots of the histograms."""

    def delta(name):
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("emostream_batch_seconds_count") or 1
    out = {
        s: delta(f"emostream_{s}_seconds_sum") / batches
        for s in ("batch", "inference", "image_decode", "redis_write")
    }
    out["compute"] = out["inference"] + out["redis_write"]
    fetches = delta("emostream_image_fetch_seconds_count") or 1
    out["image_fetch_each"] = delta("emostream_image_fetch_seconds_sum") / fetches
    out["batches"] = batches
    out["mean_batch_size"] = delta("emostream_batch_size_sum") / batches
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sustained_rate(got, batch):
    stamps = sorted(w for *_, w in got)
    span = (stamps[-1] - stamps[0]).total_seconds()
    return (len(stamps) - batch) / span if span > 0 else float("nan")


def throughput(env, items, tag, batch, **settings):
    """A backlog of ``items`` first, then a fresh worker drains it: sustained posts/s, the
    stage breakdown and the CPU seconds each process used while it drained."""
    bootstrap, redis_port, r, base, workdir = env[:5]
    harness = env[5]
    topic = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, {topic: 2})
    produce(bootstrap, topic, make_posts(items, base, tag))
    worker = start_worker(
        bootstrap, redis_port, topic, workdir / f"worker-{tag}.log", max_batch=batch, **settings
    )
    try:
        before = written(r)
        wait_for_first = time.monotonic() + 300
        while written(r) == before and time.monotonic() < wait_for_first:
            time.sleep(0.2)  # model loading and the group join are not part of the drain
        pids = {"worker": worker.pid, **harness}
        cpu0, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
        drain(r, before + len(items), worker)
        wall = time.monotonic() - t0
        cpu = {k: (cpu_seconds(p) - cpu0[k]) / wall for k, p in pids.items()}
        st = stages({}, histograms(worker.metrics_port))
        st["cores_used"] = cpu
        return sustained_rate(results(r, tag), batch), st
    finally:
        stop(worker)


def latency(env, items, tag, capacity, loads, seconds, **settings):
    """Open-loop load at each fraction of ``capacity`` against one (warm) worker."""
    bootstrap, redis_port, r, base, workdir = env[:5]
    topic = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, {topic: 2})
    worker = start_worker(bootstrap, redis_port, topic, workdir / f"worker-{tag}.log", **settings)
    rows = []
    try:
        produce(bootstrap, topic, make_posts(items[:8], base, f"{tag}-warm"))  # joins, loads
        drain(r, written(r) + 8, worker)
        for load in loads:
            rate = capacity * load
            n = max(20, int(rate * seconds))
            sample = (items * (n // len(items) + 1))[:n]
            key = f"{tag}-{int(load * 100)}"
            posts = [
                lambda it=it, k=k, key=key: make_posts([it], base, f"{key}:{k}")[0]
                for k, it in enumerate(sample)
            ]
            snap, start = histograms(worker.metrics_port), written(r)
            t0 = time.monotonic()
            produce(bootstrap, topic, posts, rate=rate)
            drain(r, start + n, worker)
            elapsed = time.monotonic() - t0
            got = results(r, key)
            lat = np.array([(w - i).total_seconds() for i, _, w in got])
            own = np.array([(w - c).total_seconds() for _, c, w in got])
            st = stages(snap, histograms(worker.metrics_port))
            max_wait = float(settings.get("max_wait_s", 0.5))
            rows.append(
                {
                    "load": load,
                    "offered_posts_per_s": rate,
                    "achieved_posts_per_s": n / elapsed,
                    "posts": int(len(lat)),
                    "p50_s": float(np.percentile(lat, 50)),
                    "p95_s": float(np.percentile(lat, 95)),
                    "p99_s": float(np.percentile(lat, 99)),
                    "worker_p50_s": float(np.percentile(own, 50)),
                    "worker_p95_s": float(np.percentile(own, 95)),
                    "worker_p99_s": float(np.percentile(own, 99)),
                    "mean_batch_size": st["mean_batch_size"],
                    "batch_compute_s": st["compute"],
                    "target_s": max_wait + 2 * st["compute"],
                }
            )
            print(f"  {tag} at {int(load * 100)}%: {rows[-1]}", flush=True)
    finally:
        stop(worker)
    return rows


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--posts", type=int, default=256)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the model and the worker)")
    ap.add_argument("--single-posts", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--load-seconds", type=float, default=20.0)
    ap.add_argument("--loads", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds")
    ap.add_argument("--harness-nice", type=int, default=10)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/pipeline.json")
    return ap.parse_args()


def _throughputs(env, items, args) -> tuple[dict[str, float], dict[str, dict]]:
    """Best posts/s and stage times per run, over interleaved rounds: this machine's speed
    wanders by 20% between minutes, and a comparison must not hinge on which run got the
    quiet minute."""
    half = items[: args.posts // 2]
    twice = half + half  # every post twice (retweets, reposts)
    random.Random(7).shuffle(twice)
    runs = {
        "adaptive": (items, args.batch, {}),
        "fixed": (items, args.batch, {"adaptive_batching": "false"}),
        "single": (items[: args.single_posts], 1, {"adaptive_batching": "false"}),
        "repeats-off": (twice, args.batch, {}),
        "repeats-on": (twice, args.batch, {"feature_reuse_size": 10_000}),
    }
    rates: dict[str, float] = {}
    st: dict[str, dict] = {}
    for rnd in range(args.rounds):
        for name, (posts, batch, settings) in runs.items():
            rate, stage = throughput(env, posts, f"{name}-{rnd}", batch, **settings)
            print(f"  round {rnd + 1}: {name} {rate:.1f} posts/s", flush=True)
            if name not in rates or rate > rates[name]:
                rates[name], st[name] = rate, stage
    return rates, st


def _measure(items, args) -> tuple[dict[str, float], dict[str, dict], dict[str, list]]:
    """Throughput per run and latency under load, on a broker, Redis and image server."""
    import redis

    workdir = REPO / ".cache" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    broker = start_tansu()
    store = start_redis(workdir / "redis")
    data = serve_directory(Dataset.load("mvsa-single").root.parent)
    r = redis.Redis(port=store.port, decode_responses=True)
    # The broker, Redis, the image server and this script stand in for other machines;
    # they run at lower CPU priority so that the worker gets the cores first, as it
    # would with them elsewhere (--harness-nice 0 turns this off).
    harness = {"broker": broker.pid, "redis": store.pid, "bench (image server)": os.getpid()}
    for pid in harness.values():
        os.setpriority(os.PRIO_PROCESS, pid, args.harness_nice)
    env = (f"127.0.0.1:{broker.port}", store.port, r, data.url, workdir, harness)
    try:
        rates, st = _throughputs(env, items, args)
        adaptive = rates["adaptive"]
        print(f"latency at {args.loads} of {adaptive:.1f} posts/s ...", flush=True)
        common = (env, items)
        load = (adaptive, args.loads, args.load_seconds)
        lat = {
            "adaptive": latency(*common, "lat-adaptive", *load, max_batch=args.batch),
            "fixed": latency(
                *common, "lat-fixed", *load, max_batch=args.batch, adaptive_batching="false"
            ),
        }
    finally:
        broker.stop()
        store.stop()
        data.stop()
    return rates, st, lat


def _print_tables(out: dict, args) -> None:
    n, batch = out["posts"], args.batch
    alone_batched, alone_single = (
        out["model_alone_batched_posts_per_s"],
        out["model_alone_single_posts_per_s"],
    )
    adaptive, fixed = out["pipeline_adaptive_posts_per_s"], out["pipeline_fixed_posts_per_s"]
    single = out["pipeline_single_posts_per_s"]
    no_reuse, reuse = out["repeats_reuse_off_posts_per_s"], out["repeats_reuse_on_posts_per_s"]
    print(f"\n| {n} mvsa-single posts (text + image) | posts/s | |")
    print("|---|---|---|")
    print(f"| model alone, batch {batch} | {alone_batched:.1f} | |")
    print(f"| model alone, batch 1 | {alone_single:.1f} | |")
    print(
        f"| pipeline, adaptive batching (max {batch}) | {adaptive:.1f} | "
        f"{100 * adaptive / alone_batched:.0f}% of model alone |"
    )
    print(f"| pipeline, fixed batches of {batch} | {fixed:.1f} | |")
    print(f"| pipeline, one post at a time | {single:.1f} | adaptive is {adaptive / single:.1f}x |")
    print(f"| each post twice, reuse off | {no_reuse:.1f} | |")
    print(f"| each post twice, reuse on | {reuse:.1f} | {reuse / no_reuse:.2f}x |")
    _print_latency(out)


def _print_latency(out: dict) -> None:
    print(
        "\n| batching | load | offered/s | achieved/s | end-to-end p50 / p95 / p99 s | "
        "in the worker p50 / p95 / p99 s | mean batch | batch compute s | target s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rows in out["latency"].items():
        for x in rows:
            print(
                f"| {name} | {int(100 * x['load'])}% | {x['offered_posts_per_s']:.1f} | "
                f"{x['achieved_posts_per_s']:.1f} | {x['p50_s']:.2f} / {x['p95_s']:.2f} / "
                f"{x['p99_s']:.2f} | {x['worker_p50_s']:.2f} / {x['worker_p95_s']:.2f} / "
                f"{x['worker_p99_s']:.2f} | {x['mean_batch_size']:.1f} | "
                f"{x['batch_compute_s']:.3f} | {x['target_s']:.2f} |"
            )
    for name, x in out["stages"].items():
        print(
            f"per batch ({name}, mean {x['mean_batch_size']:.1f} posts): total "
            f"{x['batch']:.3f} s = inference {x['inference']:.3f} + decode "
            f"{x['image_decode']:.3f} + redis {x['redis_write']:.3f} + fetch etc.; "
            f"one image fetch {x['image_fetch_each']:.3f} s; cores used while draining: "
            + ", ".join(f"{k} {v:.2f}" for k, v in x["cores_used"].items())
        )


def main() -> None:
    args = _args()
    global DEVICE
    DEVICE = args.device

    items = Dataset.load("mvsa-single").split("test")[: args.posts]
    print(f"model alone on {len(items)} mvsa-single posts (text + image) ...", flush=True)
    alone_batched = model_alone(items, args.batch)
    alone_single = model_alone(items[: args.single_posts], 1)
    rates, st, lat = _measure(items, args)
    adaptive = rates["adaptive"]
    out = {
        "machine": machine("cpu"),
        "posts": len(items),
        "batch": args.batch,
        "model_alone_batched_posts_per_s": alone_batched,
        "model_alone_single_posts_per_s": alone_single,
        "pipeline_adaptive_posts_per_s": adaptive,
        "pipeline_fixed_posts_per_s": rates["fixed"],
        "pipeline_single_posts_per_s": rates["single"],
        "pipeline_over_model": adaptive / alone_batched,
        "batched_over_single": adaptive / rates["single"],
        "repeats_reuse_off_posts_per_s": rates["repeats-off"],
        "repeats_reuse_on_posts_per_s": rates["repeats-on"],
        "rounds": args.rounds,
        "harness_nice": args.harness_nice,
        "stages": {k: st[k] for k in ("adaptive", "fixed", "single")},
        "latency": lat,
    }
    _print_tables(out, args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
