"""The broker's share of the latency: producer -> Kafka -> consumer, nothing else.

    python -m bench.broker_delivery [--posts 100] [--rate 10]

A kafka-python producer (the ingest settings: acks=all, linger 20 ms) sends timestamped
messages at ``--rate``/s to the local Tansu broker; an aiokafka consumer (faust's
driver) receives them. Delivery = receive time - send time. Run side by side: the
consumer's fetch wait at faust's 1500 ms (what the worker uses) and at 100 ms. On
Apache Kafka a fetch returns as soon as a record arrives, so the wait does not matter;
Tansu answers later, so this is the part of ``bench/pipeline.py``'s end-to-end latency
that belongs to the test broker, not to the worker. Prints a table and writes JSON
(bench/results/broker_delivery.json). Figures, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path

import numpy as np

from bench import REPO
from bench.machine import machine
from emostream.testing import create_topics, start_tansu


async def delivery(bootstrap: str, fetch_wait_ms: int, posts: int, rate: float) -> list[float]:
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaProducer

    topic = f"delivery-{uuid.uuid4().hex[:6]}"
    create_topics(bootstrap, {topic: 2})
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,
        session_timeout_ms=3000,  # Tansu's slow first join (../shared/KAFKA-TESTS.md)
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        got: list[float] = []

        async def receive():
            async for msg in consumer:
                got.append(time.time() - float(msg.value))
                if len(got) >= posts:
                    return

        task = asyncio.create_task(receive())
        for k in range(posts):
            producer.send(topic, str(time.time()).encode(), key=str(k).encode())
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(task, 60)
        return got
    finally:
        producer.close()
        await consumer.stop()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--posts", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/broker_delivery.json")
    args = ap.parse_args()
    broker = start_tansu()
    rows = []
    try:
        for wait in (1500, 100):
            lat = np.array(
                asyncio.run(delivery(f"127.0.0.1:{broker.port}", wait, args.posts, args.rate))
            )
            rows.append(
                {
                    "fetch_max_wait_ms": wait,
                    "posts": len(lat),
                    "p50_s": float(np.percentile(lat, 50)),
                    "p99_s": float(np.percentile(lat, 99)),
                    "max_s": float(lat.max()),
                }
            )
    finally:
        broker.stop()
    print(f"\nTansu delivery at {args.rate:g} posts/s, {args.posts} posts")
    print("| consumer fetch wait | p50 s | p99 s | max s |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['fetch_max_wait_ms']} ms | {r['p50_s']:.3f} | {r['p99_s']:.3f} | "
            f"{r['max_s']:.3f} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine(), "broker": "tansu", "rows": rows}))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
