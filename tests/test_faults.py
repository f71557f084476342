"""Faults with real processes: kill -9, a Redis outage, slow batches, a broker gone at ingest.

Every test ends with the same two checks: every post has exactly one result, and the
counts equal the number of distinct posts.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from helpers import metric, metric_total, metrics, produce, text_posts, wait_for, written
from redis.backoff import NoBackoff
from redis.retry import Retry

from emostream.ingest.producer import PostProducer
from emostream.ingest.settings import IngestSettings
from emostream.record import make_post, now
from emostream.testing import create_topics, free_port, start_redis, start_tansu

JPEG = (Path(__file__).resolve().parent.parent / "model/sample/images/flower.jpg").read_bytes()


def assert_exactly_once(r: redis.Redis, ids: list[str]) -> None:
    keys = set(r.keys("emo:post:*"))
    assert keys == {f"emo:post:{i}" for i in ids}, (len(keys), len(ids))
    assert written(r) == len(ids)
    assert all(
        # a research comment in another language is written as not read, never unclassifiable
        r.hget(f"emo:post:{i}", "status") in ("classified", "unsupported_language")
        for i in ids[:: max(1, len(ids) // 50)]
    )


def wait_caught_up(w) -> None:
    """Until the worker reports every partition it owns fully acknowledged (lag 0):
    after that no redelivery can arrive, so a double count would already show."""

    def caught_up() -> bool:
        lags = [
            v for k, v in metrics(w.metrics_port).items() if k.startswith("emostream_consumer_lag{")
        ]
        return bool(lags) and sum(lags) == 0

    wait_for(caught_up, timeout_s=120, proc=w, what="consumer lag 0")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_kill_9_at_random_moments_loses_nothing_counts_nothing_twice(
    broker, redis_server, worker_process, data_dir, unique
):
    posts = text_posts(data_dir, 2000, "crash")
    topic = unique("posts")
    create_topics(broker, {topic: 4})
    produce(broker, topic, posts)
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    group = unique("g")  # the same group throughout: a restart resumes from the commits
    rng = random.Random(20261124)
    kills = []
    for _ in range(5):
        w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=group)
        # killed by progress, not by time: once a random number of posts more are written
        # (somewhere inside a batch, or between two), whatever the machine's speed
        target = written(r) + rng.randint(1, 200)
        wait_for(lambda t=target: written(r) >= t, proc=w, what="progress", every_s=0.02)
        os.kill(w.pid, signal.SIGKILL)
        w.wait(10)
        kills.append(written(r))
    assert kills[-1] < len(posts), "the kills came too late to test anything"
    w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=group)
    wait_for(
        lambda: len(r.keys("emo:post:*")) >= len(posts),
        timeout_s=300,
        proc=w,
        what="all posts",
        every_s=1.0,
    )
    wait_caught_up(w)  # every message acknowledged: nothing more can arrive
    assert_exactly_once(r, [p.id for p in posts])
    print(f"\nkill -9 after {kills} posts written; all {len(posts)} written exactly once")


class RefusedWrites:
    """A real redis-server made to refuse writes one way, then to take them again."""

    def __init__(self, fault: str, store, directory: Path) -> None:
        self.fault, self.store, self.directory = fault, store, directory
        self.r = redis.Redis(port=store.port, decode_responses=True)
        self.script: threading.Thread | None = None

    def refuse(self) -> None:
        r = self.r
        if self.fault == "oom":  # full under noeviction
            used = int(r.info("memory")["used_memory"])
            r.config_set("maxmemory-policy", "noeviction")
            r.config_set("maxmemory", str(used + 64 * 1024))
        elif self.fault == "readonly":  # a replica of nothing, as after a failover
            r.replicaof("127.0.0.1", str(free_port()))
        elif self.fault == "busy":  # a script that does not end: BUSY after 100 ms
            r.config_set("busy-reply-threshold", "100")
            self.script = threading.Thread(target=self._endless_script, daemon=True)
            self.script.start()
        else:  # misconf: a snapshot failed (its folder is gone) under stop-writes-on-bgsave-error
            r.config_set("save", "3600 1")
            shutil.rmtree(self.directory)
            r.bgsave()
            wait_for(
                lambda: r.info("persistence")["rdb_last_bgsave_status"] == "err",
                what="the snapshot failed",
            )

    def _endless_script(self) -> None:
        # no read timeout and no retry: a retried EVAL would start the script again
        once = redis.Redis(port=self.store.port, socket_timeout=None, retry=Retry(NoBackoff(), 0))
        try:
            once.eval("while true do end", 0)
        except redis.exceptions.ResponseError:
            pass  # killed by allow()

    def allow(self) -> None:
        r = self.r
        if self.fault == "oom":
            r.config_set("maxmemory", "0")
        elif self.fault == "readonly":
            r.replicaof("NO", "ONE")
        elif self.fault == "busy":
            r.script_kill()
            self.script.join(timeout=30)
            assert not self.script.is_alive(), "the script did not end"
        else:
            r.config_set("stop-writes-on-bgsave-error", "no")


@pytest.mark.parametrize("fault", ["oom", "readonly", "busy", "misconf"])
def test_redis_refusing_writes_holds_the_batch_and_loses_nothing(
    broker, worker_process, data_dir, unique, tmp_path, fault
):
    """Redis up but refusing writes (full under noeviction: OOM; a replica: READONLY; a
    script running: BUSY; a failed snapshot: MISCONF) is the store's fault: the batch is
    held and retried, counted under its kind, nothing is dead-lettered or committed, and
    once Redis takes writes again every post is there once."""
    store = start_redis(tmp_path / "redis")
    refused = RefusedWrites(fault, store, tmp_path / "redis")
    try:
        refused.refuse()
        posts = text_posts(data_dir, 300, f"refused-{fault}")
        topic = unique("posts")
        create_topics(broker, {topic: 1})
        w = worker_process(broker, store.port, topic_posts=topic, consumer_group=unique("g"))
        produce(broker, topic, posts)
        counted = f'emostream_redis_errors_total{{kind="{fault}"}}'
        wait_for(
            lambda: (
                metric(w.metrics_port, counted) >= 3
                and metric(w.metrics_port, "emostream_redis_stalled") == 1
            ),
            timeout_s=180,
            proc=w,
            what="writes refused, retried, counted under their kind and the stall reported",
        )
        assert w.poll() is None, "the worker stopped while Redis refused writes"
        refused.allow()
        r = refused.r
        wait_for(lambda: written(r) >= len(posts), timeout_s=240, proc=w, what="every post")
        assert metric(w.metrics_port, "emostream_redis_stalled") == 0
        dead = sum(v for k, v in metrics(w.metrics_port).items() if "dead_lettered_total" in k)
        assert dead == 0
        wait_caught_up(w)
        assert_exactly_once(r, [p.id for p in posts])
    finally:
        store.stop()


def test_redis_outage_stalls_the_worker_and_loses_nothing(
    broker, worker_process, data_dir, unique, tmp_path
):
    store = start_redis(tmp_path / "aof", aof=True)
    try:
        posts = text_posts(data_dir, 800, "outage")
        topic = unique("posts")
        create_topics(broker, {topic: 2})
        w = worker_process(broker, store.port, topic_posts=topic, consumer_group=unique("g"))
        produce(broker, topic, posts)
        r = redis.Redis(port=store.port, decode_responses=True)
        wait_for(lambda: written(r) >= 100, proc=w, what="first results")
        store.stop()  # SIGTERM: redis-server fsyncs its AOF and exits
        outage_start = time.monotonic()
        wait_for(
            lambda: metric(w.metrics_port, "emostream_redis_stalled") == 1,
            timeout_s=30,
            proc=w,
            what="stall reported",
        )
        rss_stalled = rss_kib(w.pid)
        wait_for(  # the outage lasts until the worker has retried with back-off 5 times
            lambda: metric_total(w.metrics_port, "emostream_redis_errors_total") >= 5,
            timeout_s=120,
            proc=w,
            what="five failed writes",
        )
        assert w.poll() is None, "worker crashed during the outage"
        errors = metric_total(w.metrics_port, "emostream_redis_errors_total")
        rss_after = rss_kib(w.pid)
        store = start_redis(tmp_path / "aof", port=store.port, aof=True)
        r = redis.Redis(port=store.port, decode_responses=True)
        wait_for(
            lambda: len(r.keys("emo:post:*")) >= len(posts),
            timeout_s=240,
            proc=w,
            what="all posts after the outage",
            every_s=1.0,
        )
        assert metric(w.metrics_port, "emostream_redis_stalled") == 0
        assert errors >= 3  # retried with back-off, not once and given up
        assert rss_after < rss_stalled + 50_000  # held, not piling up batches (KiB)
        wait_caught_up(w)
        assert_exactly_once(r, [p.id for p in posts])
        print(
            f"\noutage {time.monotonic() - outage_start:.0f}s, {errors:.0f} failed writes, "
            f"RSS {rss_stalled} -> {rss_after} KiB during the outage"
        )
    finally:
        store.stop()


class SlowImages(BaseHTTPRequestHandler):
    delay_s = 2.5
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        time.sleep(self.delay_s)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG)


def test_slow_batches_do_not_throw_the_worker_out_of_its_group(
    broker, redis_server, worker_process, unique
):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), SlowImages)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        posts = [
            make_post(
                id=f"slow:{i}",
                source="flickr",
                created_at=now(),
                text=f"post {i}",
                image_url=f"{url}/{i}.jpg",
            )
            for i in range(48)
        ]
        topic = unique("posts")
        create_topics(broker, {topic: 2})
        # every batch waits 2.5 s for its pictures; the group session is 3 s
        w = worker_process(
            broker, redis_server.port, topic_posts=topic, consumer_group=unique("g"), max_batch=8
        )
        produce(broker, topic, posts)
        r = redis.Redis(port=redis_server.port, decode_responses=True)
        wait_for(
            lambda: len(r.keys("emo:post:*")) >= len(posts),
            timeout_s=240,
            proc=w,
            what="all slow posts",
            every_s=1.0,
        )
        joins = Path(w.log).read_text().count("Revoking previously assigned partitions")
        assert joins == 1, f"{joins - 1} rebalances while batches were slow"
        assert_exactly_once(r, [p.id for p in posts])
        assert r.hget("emo:post:slow:0", "modalities") == "text,image"
    finally:
        srv.shutdown()


def test_broker_gone_at_ingest_every_post_is_acked_or_counted_failed(data_dir):
    tansu = start_tansu()
    broker = f"127.0.0.1:{tansu.port}"
    try:
        create_topics(broker, {"gone": 1})
        settings = IngestSettings(
            env={},
            kafka_bootstrap=broker,
            topic_posts="gone",
            producer_max_in_flight=50,
            producer_max_block_ms=500,
            producer_delivery_timeout_s=4.0,
            producer_unhealthy_after_s=0.0,
            ingest_metrics_port=0,
        )
        producer = PostProducer(settings, "replay", retry_backoff_ms=100)
        posts = text_posts(data_dir, 400, "gone")
        for p in posts[:100]:
            producer.send(p)
        producer.flush(10)
        assert producer.stats.acked == 100
        tansu.kill()  # the broker vanishes mid-stream
        most_in_flight = 0
        for p in posts[100:]:
            producer.send(p)
            most_in_flight = max(most_in_flight, producer.stats.in_flight)
        producer.close(timeout_s=10)
        st = producer.stats
        assert st.sent == 400 and st.acked + st.failed == 400 and st.failed >= 300
        assert most_in_flight <= 50  # bounded memory while the broker is away
        assert st.rebuilds == 0  # timeouts are about the posts, not a broken producer
        from prometheus_client import REGISTRY

        healthy = REGISTRY.get_sample_value("emostream_producer_healthy", {"source": "replay"})
        assert healthy == 0.0 and not producer.healthy  # only failures since the last ack

        failed = sum(
            s.value
            for m in REGISTRY.collect()
            if m.name == "emostream_produce_failures"
            for s in m.samples
            if s.name.endswith("_total")
        )
        assert failed >= st.failed
    finally:
        tansu.stop()


def test_sigterm_finishes_the_batch_in_hand_and_a_restart_resumes(
    broker, redis_server, worker_process, data_dir, unique
):
    posts = text_posts(data_dir, 600, "term")
    topic = unique("posts")
    create_topics(broker, {topic: 2})
    produce(broker, topic, posts)
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    group = unique("g")
    w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=group)
    wait_for(lambda: written(r) >= 50, proc=w, what="first results")
    w.terminate()
    assert w.wait(60) == 0  # a clean exit, not a kill
    log = Path(w.log).read_text()
    assert "Traceback" not in log
    stopped_at = written(r)
    w = worker_process(broker, redis_server.port, topic_posts=topic, consumer_group=group)
    wait_for(
        lambda: len(r.keys("emo:post:*")) >= len(posts),
        timeout_s=240,
        proc=w,
        what="the rest after restart",
        every_s=1.0,
    )
    wait_caught_up(w)
    assert_exactly_once(r, [p.id for p in posts])
    print(f"\nSIGTERM after {stopped_at} posts; restart finished the rest, each once")


def test_ingest_waits_for_a_broker_that_starts_after_it(data_dir):
    from prometheus_client import REGISTRY

    from emostream.testing import free_port

    def unreachable() -> float:
        return REGISTRY.get_sample_value("emostream_broker_unreachable_total") or 0.0

    port = free_port()
    before = unreachable()
    started = []

    def start_broker_after_two_failed_attempts() -> None:
        wait_for(lambda: unreachable() >= before + 2, timeout_s=120, what="two attempts")
        started.append(start_tansu(port=port))

    t = threading.Thread(target=start_broker_after_two_failed_attempts)
    t.start()
    try:
        settings = IngestSettings(
            env={}, kafka_bootstrap=f"127.0.0.1:{port}", topic_posts="late", ingest_metrics_port=0
        )
        producer = PostProducer(settings, "replay", bootstrap_timeout_ms=1000)  # per attempt
        t.join(120)
        create_topics(f"127.0.0.1:{port}", {"late": 1})
        for p in text_posts(data_dir, 20, "late"):
            producer.send(p)
        producer.close(timeout_s=30)
        assert producer.stats.acked == 20 and unreachable() >= before + 2
    finally:
        t.join(120)
        for svc in started:
            svc.stop()


def test_broker_restarted_empty_under_a_running_ingest_loses_nothing(
    worker_process, redis_server, data_dir, unique
):
    """kill -9 of the broker under a running ingest and worker; it comes back empty (as a
    broker whose disks were lost would). The ingest's idempotent producer finds its
    producer id unknown: it is rebuilt and the posts it held are sent again, so every
    post sent after the consumed ones reaches Redis once; the worker never exits."""
    port = redis_server.port
    tansu = start_tansu()
    broker = f"127.0.0.1:{tansu.port}"
    topic, group = unique("posts"), unique("g")
    try:
        create_topics(broker, {topic: 1})
        settings = IngestSettings(
            env={}, kafka_bootstrap=broker, topic_posts=topic, ingest_metrics_port=0
        )
        producer = PostProducer(settings, "replay", retry_backoff_ms=100)
        posts = text_posts(data_dir, 500, "restart")
        w = worker_process(broker, port, topic_posts=topic, consumer_group=group)
        for p in posts[:200]:
            producer.send(p)
        producer.flush(30)
        r = redis.Redis(port=port, decode_responses=True)
        wait_for(lambda: written(r) >= 200, proc=w, what="the posts before the restart")
        tansu.kill()
        for p in posts[200:300]:  # sent while the broker is away: held by the producer
            producer.send(p)
        tansu = start_tansu(port=tansu.port)
        create_topics(broker, {topic: 1})
        for p in posts[300:]:
            producer.send(p)
        producer.close(timeout_s=60)
        assert (producer.stats.acked, producer.stats.failed) == (500, 0)
        wait_for(lambda: written(r) >= 500, timeout_s=240, proc=w, what="every post")
        assert w.poll() is None, "the worker stopped"
        dead = sum(v for k, v in metrics(w.metrics_port).items() if "dead_lettered_total" in k)
        assert dead == 0
        wait_caught_up(w)
        assert_exactly_once(r, [p.id for p in posts])
        print(f"\nbroker restarted empty: producer rebuilt {producer.stats.rebuilds} time(s)")
    finally:
        tansu.stop()
