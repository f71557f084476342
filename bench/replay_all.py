"""Replay all of ../shared/data through the worker's batch code, in one run.

    python -m bench.replay_all [--runtimes onnx eager] [--json bench/results/replay_all.json]

Starts its own redis-server and a loopback server for the dataset pictures, then runs
``emostream replay <data dir> --image-base-url <server>`` (as a function): every posts.csv,
80,189 rows. The original image URLs of rows without a picture file are dropped (they
are dead 2009-2016 links, see the data README): those posts are classified on their text.
Each runtime of ``--runtimes`` replays everything in turn, in the same run, with a
redis-server of its own (``eager``: the plain torch path before the ONNX Runtime one).
Prints the summaries and writes JSON with the throughput of each.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench import REPO
from emostream.model.training.datasets import default_data_dir
from emostream.testing import serve_directory, start_redis
from emostream.worker.replay.replayer import run_replay
from emostream.worker.settings import WorkerSettings


def replay(data_dir: Path, batch: int, runtime: str) -> dict:
    store = start_redis(Path(tempfile.mkdtemp(prefix="emostream-replay-")))
    images = serve_directory(data_dir)
    try:
        settings = WorkerSettings(
            env={},
            redis_url=f"redis://127.0.0.1:{store.port}/0",
            image_allow_networks=["127.0.0.0/8"],
            max_batch=batch,
            worker_metrics_port=0,
            runtime=runtime,
        )
        # the posts.csv "image" column is relative to each dataset folder
        summary = run_replay(
            settings,
            files=sorted(data_dir.glob("*/posts.csv")),
            run_id=f"all-data-{runtime}",
            image_base_url=None,
            progress=True,
            tag="bench/replay_all.py",
            image_base_for=lambda path: f"{images.url}/{path.parent.name}",
            remote_images=False,
        )
    finally:
        images.stop()
        store.stop()
    print(runtime, summary.line(), flush=True)
    return {
        "rows": summary.rows,
        "seconds": summary.seconds,
        "posts_per_s": summary.rows / summary.seconds,
        "written": summary.written,
        "dead_lettered": dict(summary.dead),
        "unclassifiable": summary.unclassifiable,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--runtimes", nargs="+", default=["onnx", "eager"])
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/replay_all.json")
    args = ap.parse_args()
    runs = {rt: replay(args.data_dir, args.batch, rt) for rt in args.runtimes}
    print("\n| runtime | rows | seconds | posts/s |\n|---|---:|---:|---:|")
    for rt, r in runs.items():
        print(f"| {rt} | {r['rows']} | {r['seconds']:.0f} | {r['posts_per_s']:.1f} |")
    out = {"runs": runs, "batch": args.batch, "cores": os.cpu_count()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
