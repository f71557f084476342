"""A soak: mixed traffic for a long while through a real worker, with faults on a schedule.

    python -m bench.soak --minutes 30          # make soak

A local broker, a redis-server with AOF, an image server over ../shared/data and one
``emostream worker`` process. A producer sends text, image and text+image posts at a steady
rate; on a schedule the worker is killed with kill -9 (and restarted), Redis is restarted,
and a burst of hostile messages is sent. The worker's RSS and open file descriptors are
sampled throughout. At the end: every post written exactly once, every hostile message
dead-lettered, and RSS / descriptors per worker life. Prints a table, writes
bench/results/soak.json and a PNG of RSS and descriptors over time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from kafka import KafkaConsumer, KafkaProducer
from tqdm import tqdm

from emostream.ingest.producer import PostProducer
from emostream.ingest.settings import IngestSettings
from emostream.model.training.datasets import Dataset, default_data_dir
from emostream.record import make_post, now
from emostream.testing import (
    create_topics,
    free_port,
    local_worker_env,
    serve_directory,
    start_redis,
    start_tansu,
)

RESULTS = Path(__file__).resolve().parent / "results"
NOW = "2026-11-24T08:00:00Z"


def hostile_messages(n: int) -> list[bytes]:
    """The kinds that once stopped a partition, and plain garbage; ``n``-th burst."""
    base = json.dumps(
        {
            "v": 1,
            "id": f"h:{n}",
            "source": "reddit",
            "created_at": NOW,
            "ingested_at": NOW,
            "text": "SLOT",
        }
    ).encode()
    deep = b"[" * 2000 + b"]" * 2000
    return [
        base.replace(b"SLOT", b"bad \xff utf-8"),
        base.replace(b"SLOT", b"\xed\xa0\x80"),
        base[:-1] + b', "zz": ' + deep + b"}",
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        base.replace(b'"reddit"', b'"reddit", "channel": "a|b"'),
        b"{not json",
        b"\x00" * 100,
        b"",
    ]


class Traffic(threading.Thread):
    """Sends mixed posts at ``rate`` per second until stopped; remembers every id sent."""

    def __init__(self, broker: str, topic: str, images: str, rate: float, data: Path) -> None:
        super().__init__(daemon=True)
        settings = IngestSettings(
            env={}, kafka_bootstrap=broker, topic_posts=topic, ingest_metrics_port=0
        )
        self.producer = PostProducer(settings, "replay")
        self.texts = [i.text for i in Dataset.load("goemotions", data).split("train")[:5000]]
        mvsa = Dataset.load("mvsa-single", data).split("train")
        self.pictures = [(i.text, f"{images}/mvsa-single/images/{i.id}.jpg") for i in mvsa]
        self.rate = rate
        self.ids: list[str] = []
        self.stopping = threading.Event()

    def post(self, n: int):
        kind = n % 3
        if kind == 0:
            return make_post(
                id=f"s:{n}",
                source="reddit",
                channel=f"c/{n % 7}",
                created_at=now(),
                text=self.texts[n % len(self.texts)],
            )
        text, url = self.pictures[n % len(self.pictures)]
        return make_post(
            id=f"s:{n}",
            source="flickr",
            channel="pics",
            created_at=now(),
            text=text if kind == 1 else None,
            image_url=url,
        )

    def run(self) -> None:
        n = 0
        start = time.monotonic()
        while not self.stopping.is_set():
            post = self.post(n)
            self.producer.send(post)
            self.ids.append(post.id)
            n += 1
            delay = start + n / self.rate - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
        self.producer.close()


def proc_stats(pid: int) -> tuple[int, int]:
    """(RSS in MiB, open descriptors) of a process; (0, 0) once it is gone."""
    try:
        rss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        return rss // 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return 0, 0


class _Rig:
    """The broker, Redis, image server and worker of a soak run, and the faults on them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.tansu = start_tansu()
        self.broker = f"127.0.0.1:{self.tansu.port}"
        self.store = start_redis(work / "redis", aof=True)
        self.images = serve_directory(default_data_dir())
        self.topic, self.dead = "soak.posts", "soak.dead"
        create_topics(self.broker, {self.topic: 4, self.dead: 1})
        self.env = {
            **os.environ,
            **local_worker_env(
                self.broker,
                self.store.port,
                free_port(),
                topic_posts=self.topic,
                topic_dead_letter=self.dead,
                consumer_group="soak",
                device="cpu",
                state_dir=str(work / "state"),
            ),
        }
        self.life = 0
        self.worker = self._start_worker()
        self.hostile_producer = KafkaProducer(bootstrap_servers=self.broker, acks="all")
        self.hostile = 0

    def _start_worker(self) -> subprocess.Popen:
        log = open(self.work / f"worker-{self.life}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "-m", "emostream.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def fault(self, slot: int) -> str:
        """The fault of a slot, in turn: hostile burst, kill -9, Redis restart."""
        if slot % 3 == 1:  # a burst of hostile messages
            for value in hostile_messages(slot):
                self.hostile_producer.send(self.topic, key=b"hostile", value=value)
            self.hostile_producer.flush()
            self.hostile += len(hostile_messages(slot))
            return "hostile burst"
        if slot % 3 == 2:  # kill -9, restart
            os.kill(self.worker.pid, signal.SIGKILL)
            self.worker.wait(10)
            self.life += 1
            self.worker = self._start_worker()
            return "kill -9"
        # Redis restart (SIGTERM: it fsyncs its AOF), same port
        self.store.stop()
        self.store = start_redis(self.work / "redis", port=self.store.port, aof=True)
        return "redis restart"

    def stop(self) -> None:
        self.hostile_producer.close()
        self.worker.terminate()
        self.worker.wait(60)
        self.store.stop()
        self.tansu.stop()
        self.images.stop()


def _drive(rig: _Rig, minutes: float) -> tuple[list[dict], list[dict]]:
    """Samples the worker every 5 s and injects ten faults over the run."""
    samples, events = [], []
    t0 = time.monotonic()
    end = t0 + minutes * 60
    every = max(60.0, minutes * 60 / 10)  # ten fault slots
    slot = 0
    bar = tqdm(total=int(minutes * 60), desc="soak", unit="s")
    while time.monotonic() < end:
        elapsed = time.monotonic() - t0
        rss, fds = proc_stats(rig.worker.pid)
        samples.append({"t": round(elapsed, 1), "life": rig.life, "rss_mib": rss, "fds": fds})
        if elapsed >= (slot + 1) * every:
            slot += 1
            events.append({"t": round(elapsed, 1), "event": rig.fault(slot)})
        bar.update(int(elapsed) - bar.n)
        time.sleep(5)
    bar.close()
    return samples, events


def _outcome(rig: _Rig, ids: list[str]) -> dict:
    """What reached Redis of the posts sent (waits up to 15 minutes for the backlog)."""
    r = redis.Redis(port=rig.store.port, decode_responses=True)
    deadline = time.monotonic() + 900
    while len(r.keys("emo:post:*")) < len(ids) and time.monotonic() < deadline:
        time.sleep(2)
    keys = set(r.keys("emo:post:*"))
    counted = sum(int(v) for k in r.keys("emo:totals:*") for v in r.hvals(k))
    return {
        "posts_sent": len(ids),
        "posts_written": len(keys),
        "lost": len({f"emo:post:{i}" for i in ids} - keys),
        "counted": counted,
        "double_counted": counted - len(keys),
        "dead_letters": _count(rig.broker, rig.dead),
    }


def run(minutes: float, rate: float, out: Path) -> dict:
    rig = _Rig(Path(tempfile.mkdtemp(prefix="emostream-soak-")))
    traffic = Traffic(rig.broker, rig.topic, rig.images.url, rate, default_data_dir())
    traffic.start()
    samples, events = _drive(rig, minutes)
    traffic.stopping.set()
    traffic.join()
    report = {
        "minutes": minutes,
        "rate_per_s": rate,
        **_outcome(rig, traffic.ids),
        "hostile_sent": rig.hostile,
        "worker_lives": _lives(samples),
        "events": events,
        "samples": samples,
        "worker_alive_at_end": rig.worker.poll() is None,
    }
    rig.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    _plot(report, out.with_suffix(".png"))
    return report


def _count(broker: str, topic: str) -> int:
    """Messages on ``topic`` (a probe consumer of its own)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        group_id="soak-probe",
        consumer_timeout_ms=15000,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    try:
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def _lives(samples: list[dict]) -> list[dict]:
    """Per worker life: RSS and descriptors two minutes in (warm) and at its end."""
    out = []
    for life in sorted({s["life"] for s in samples}):
        mine = [s for s in samples if s["life"] == life and s["rss_mib"]]
        if not mine:
            continue
        warm = next((s for s in mine if s["t"] >= mine[0]["t"] + 120), mine[-1])
        out.append(
            {
                "life": life,
                "minutes": round((mine[-1]["t"] - mine[0]["t"]) / 60, 1),
                "rss_warm_mib": warm["rss_mib"],
                "rss_end_mib": mine[-1]["rss_mib"],
                "rss_max_mib": max(s["rss_mib"] for s in mine),
                "fds_warm": warm["fds"],
                "fds_end": mine[-1]["fds"],
                "fds_max": max(s["fds"] for s in mine),
            }
        )
    return out


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["samples"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    a.plot([x["t"] / 60 for x in s], [x["rss_mib"] for x in s], lw=1)
    a.set_ylabel("worker RSS, MiB")
    b.plot([x["t"] / 60 for x in s], [x["fds"] for x in s], lw=1, color="tab:orange")
    b.set_ylabel("open descriptors")
    b.set_xlabel("minutes")
    for e in report["events"]:
        for ax in (a, b):
            ax.axvline(e["t"] / 60, color="grey", ls=":", lw=0.8)
        a.annotate(
            e["event"],
            (e["t"] / 60, a.get_ylim()[1]),
            fontsize=7,
            rotation=90,
            va="top",
            ha="right",
        )
    a.set_title(
        f"soak: {report['posts_sent']} posts, {report['lost']} lost, "
        f"{report['double_counted']} double-counted"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=12.0, help="posts per second")
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = ap.parse_args()
    rep = run(args.minutes, args.rate, args.out)
    print(f"\n{'sent':>8} {'written':>8} {'lost':>5} {'double':>7} {'hostile':>8}")
    print(
        f"{rep['posts_sent']:>8} {rep['posts_written']:>8} {rep['lost']:>5} "
        f"{rep['double_counted']:>7} {rep['hostile_sent']:>8}"
    )
    print(
        f"\n{'life':>4} {'min':>5} {'RSS warm':>9} {'RSS end':>8} {'RSS max':>8} "
        f"{'fds warm':>9} {'fds end':>8}"
    )
    for x in rep["worker_lives"]:
        print(
            f"{x['life']:>4} {x['minutes']:>5} {x['rss_warm_mib']:>9} {x['rss_end_mib']:>8} "
            f"{x['rss_max_mib']:>8} {x['fds_warm']:>9} {x['fds_end']:>8}"
        )
    print(f"events: {[(e['t'], e['event']) for e in rep['events']]}")
    print(
        f"dead letters: {rep['dead_letters']} for {rep['hostile_sent']} hostile messages "
        "(at least once: a kill before the acknowledgement sends one again)"
    )
    ok = (
        rep["lost"] == 0
        and rep["double_counted"] == 0
        and rep["worker_alive_at_end"]
        and rep["dead_letters"] >= rep["hostile_sent"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
