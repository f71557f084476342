"""What a chart costs the dashboard API: hourly counts against per-minute counts, side by
side in one run, over the same Redis.

    python -m bench.aggregates [--days 30] [--channels 3] [--rounds 5]

Fills a redis-server of its own with ``--days`` of results through the real store (one
post per minute per channel, so every per-minute bucket holds data), starts two
``emostream api`` processes over it (``EMOSTREAM_API_HOURLY_COUNTS`` on and off) and asks
each for the chart of the last 1 h, 24 h, 7 days and 30 days, interleaved, ``--rounds``
times. For each it reports the hashes Redis read (its own ``commandstats``) and the
request's wall time (best and median), and checks that both give the same chart. Prints
a table and writes bench/results/aggregates.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis
from tqdm import tqdm

from bench import REPO
from bench.machine import machine
from emostream.model.prediction import Prediction
from emostream.testing import free_port, start_redis, wait_for_port
from emostream.worker.store import Result, ResultStore

WINDOWS = {"1 h": 3600, "24 h": 86400, "7 d": 7 * 86400, "30 d": 30 * 86400}
LABELS = ("joy", "anger", "fear", "sadness", "neutral", "surprise", "disgust")


def fill(port: int, days: int, channels: int) -> int:
    """One result per minute per channel over ``days``, written by the store's script."""
    now = datetime.now(UTC)
    minutes = days * 24 * 60

    async def go() -> int:
        store = ResultStore.from_url(f"redis://127.0.0.1:{port}/0")
        n = 0
        try:
            for start in tqdm(range(0, minutes, 500), desc="writing", unit="batch"):
                batch = []
                for m in range(start, min(start + 500, minutes)):
                    t = now - timedelta(minutes=m)
                    for c in range(channels):
                        label = LABELS[(m + c) % len(LABELS)]
                        batch.append(Result(
                            id=f"bench:{m}:{c}", source="reddit", channel=f"r/c{c}",
                            created_at=t, ingested_at=t, written_at=t, prediction=Prediction(
label=label,
                            emotions={label: 1.0}, sentiment="neutral",
                            sentiments={"neutral": 1.0}, modalities=("text",),
                            image_status="absent", model_version="bench",
), text="",
                        ))  # fmt: skip
                n += sum(await store.write(batch))
        finally:
            await store.aclose()
        return n

    return asyncio.run(go())


def start_api(redis_port: int, hourly: bool, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "EMOSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "EMOSTREAM_API_HOST": "127.0.0.1",
        "EMOSTREAM_API_PORT": str(port),
        "EMOSTREAM_API_METRICS_PORT": "0",
        "EMOSTREAM_API_AUTH": "none",  # loopback only
        "EMOSTREAM_API_HOURLY_COUNTS": "true" if hourly else "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "emostream.cli", "api"], env=env,
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    wait_for_port(port, proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def hgetall_calls(r: redis.Redis) -> int:
    return r.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0)


def measure(r: redis.Redis, url: str, window: int) -> tuple[dict, int, float]:
    before = hgetall_calls(r)
    t0 = time.perf_counter()
    body = httpx.get(f"{url}/api/aggregates", params={"window_s": window}, timeout=120).json()
    wall = time.perf_counter() - t0
    return body, hgetall_calls(r) - before, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = start_redis(Path(tmp) / "redis")
        apis = []
        try:
            written = fill(store.port, args.days, args.channels)
            r = redis.Redis(port=store.port)
            apis = [start_api(store.port, h, Path(tmp) / f"api-{h}.log") for h in (True, False)]
            rows = run_rounds(r, dict(zip(("hourly", "per-minute"), apis, strict=True)), args)
        finally:
            for proc, _ in apis:
                proc.terminate()
                proc.wait(10)
            store.stop()
    report(rows, written, args)
    return 0


def run_rounds(r: redis.Redis, apis: dict, args) -> list[dict]:
    """Each window on each API, interleaved. Reads are the least over the rounds: the
    API's own shift pass (at start, then once a minute) can only add to a round's."""
    cells: dict[tuple[str, str], dict] = {}
    for _ in tqdm(range(args.rounds), desc="rounds"):
        for label, window in WINDOWS.items():
            for name, (_, url) in apis.items():
                body, reads, wall = measure(r, url, window)
                cell = cells.setdefault((label, name), {"reads": [], "ms": [], "body": body})
                cell["reads"].append(reads)
                cell["ms"].append(1000 * wall)
    rows = []
    for label in WINDOWS:
        hourly, minute = cells[(label, "hourly")], cells[(label, "per-minute")]
        same = hourly["body"]["buckets"] == minute["body"]["buckets"]
        for name, cell in (("hourly", hourly), ("per-minute", minute)):
            rows.append({
                "window": label, "counts": name, "hashes_read": min(cell["reads"]),
                "best_ms": round(min(cell["ms"]), 1),
                "median_ms": round(statistics.median(cell["ms"]), 1),
                "bins": len(cell["body"]["buckets"]), "same_chart": same,
            })  # fmt: skip
    return rows


def report(rows: list[dict], written: int, args) -> None:
    print(f"\n{written} results over {args.days} days, {args.channels} channels")
    print("| window | counts | hashes read | best ms | median ms | bins | same chart |")
    print("|---|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['window']} | {x['counts']} | {x['hashes_read']:,} | {x['best_ms']} | "
              f"{x['median_ms']} | {x['bins']} | {x['same_chart']} |")  # fmt: skip
    out = REPO / "bench" / "results" / "aggregates.json"
    out.write_text(json.dumps({
        "machine": machine(), "results_written": written, "days": args.days,
        "channels": args.channels, "rounds": args.rounds, "rows": rows,
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
