"""What ``emostream export`` costs: results per second out of Redis into Parquet, JSON
Lines and CSV, and through ``GET /api/export``, in one run over the same Redis.

    python -m bench.export [--days 7] [--channels 3]

Fills a redis-server of its own as ``bench/aggregates.py`` does (one result per minute per
channel, written by the store's script), then exports them all each way, timing each.
Prints a table and writes bench/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx

from bench import REPO
from bench.aggregates import fill, start_api
from bench.machine import machine
from emostream.testing import start_redis
from emostream.worker.replay.export import export
from emostream.worker.settings import WorkerSettings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--channels", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = start_redis(Path(tmp) / "redis")
        api = None
        try:
            written = fill(store.port, args.days, args.channels)
            settings = WorkerSettings(
                env={"EMOSTREAM_REDIS_URL": f"redis://127.0.0.1:{store.port}/0"}
            )
            for fmt in ("parquet", "jsonl", "csv"):
                out = Path(tmp) / f"results.{fmt}"
                t0 = time.perf_counter()
                n = export(settings, None, out, quiet=True)
                rows.append(_row(f"emostream export .{fmt}", n, time.perf_counter() - t0, out))
            api, url = start_api(store.port, True, Path(tmp) / "api.log")
            t0 = time.perf_counter()
            body = httpx.get(f"{url}/api/export", timeout=600).content
            n = body.count(b"\n")
            rows.append(
                _row("GET /api/export (jsonl)", n, time.perf_counter() - t0, None, len(body))
            )
        finally:
            if api is not None:
                api.terminate()
                api.wait(10)
            store.stop()
    report(rows, written)
    return 0


def _row(way: str, n: int, seconds: float, out: Path | None, size: int = 0) -> dict:
    size = out.stat().st_size if out is not None else size
    return {"way": way, "results": n, "seconds": round(seconds, 2),
            "results_per_s": round(n / seconds), "mb": round(size / 1e6, 1)}  # fmt: skip


def report(rows: list[dict], written: int) -> None:
    print(f"\n{written} results in Redis")
    print("| export | results | seconds | results/s | MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        rate = f"{r['results_per_s']:,}"
        print(f"| {r['way']} | {r['results']:,} | {r['seconds']} | {rate} | {r['mb']} |")
    out = REPO / "bench" / "results" / "export.json"
    out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    raise SystemExit(main())
