"""Accuracy of the shipped model per test split under each CPU runtime, against eager.

    python -m bench.runtime_accuracy [--runtimes eager onnx onnx-int8] [--split test]

Runs ``emostream eval --split SPLIT --runtime R`` for every runtime (same weights, same
data; each writes its report outside the checkout), then prints one table with every
served-head and own-head accuracy and its change against the first runtime in points,
flags rows that move by more than 0.5 point, and writes bench/results/runtime_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench import REPO
from bench.machine import machine

TOLERANCE_PT = 0.5


def run_eval(runtime: str, split: str, out: Path) -> dict:
    exe = Path(sys.executable).with_name("emostream")  # the CLI of the running environment
    cmd = [str(exe), "eval", "--split", split, "--runtime", runtime, "--out", str(out)]
    subprocess.run(cmd, check=True)
    return json.loads((out / "served.json").read_text())


def rows(doc: dict) -> dict[tuple[str, str, str], tuple[int, float]]:
    """(dataset, head kind, condition) -> (n, accuracy)."""
    out = {}
    for name, conds in doc["metrics"].items():
        for cond, r in conds.items():
            if cond not in ("own head", "ekman grouping") and r:
                out[(name, "served", cond)] = (r["n"], r["accuracy"])
        for cond, r in conds.get("own head", {}).items():
            if r:
                out[(name, "own head", cond)] = (r["n"], r["accuracy"])
    return out


def table(results: dict[str, dict], runtimes: list[str]) -> tuple[list[str], int]:
    base = rows(results[runtimes[0]])
    others = {r: rows(results[r]) for r in runtimes[1:]}
    head = "| dataset | head | condition | n | " + " | ".join(
        [runtimes[0]] + [f"{r} (Δ pt)" for r in runtimes[1:]]
    )
    lines = [head + " |", "|---|---|---|---:|" + "---:|" * len(runtimes)]
    moved = 0
    for key in sorted(base):
        n, acc = base[key]
        cells = [f"{acc:.3f}"]
        for r in runtimes[1:]:
            delta = (others[r][key][1] - acc) * 100
            moved += abs(round(delta, 6)) > TOLERANCE_PT  # 2 of 400 posts is 0.5, not more
            cells.append(f"{others[r][key][1]:.3f} ({delta:+.1f})")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {n} | " + " | ".join(cells) + " |")
    return lines, moved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runtimes", nargs="+", default=["eager", "onnx", "onnx-int8"])
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args()
    from emostream.model.training.shipping import default_reports_dir

    work = default_reports_dir() / "runtime-accuracy"
    results = {r: run_eval(r, args.split, work / r) for r in args.runtimes}
    lines, moved = table(results, args.runtimes)
    print("\n".join(lines))
    print(f"\nrows that move by more than {TOLERANCE_PT} point: {moved}")
    doc = {
        "machine": machine(),
        "split": args.split,
        "model_version": results[args.runtimes[0]]["meta"].get("model_version"),
        "tolerance_pt": TOLERANCE_PT,
        "rows_moved": moved,
        "accuracy": {
            r: {" / ".join(k): v[1] for k, v in rows(report).items()}
            for r, report in results.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runtime_accuracy.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
