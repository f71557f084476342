"""``emostream classify``, ``sample`` and ``export-onnx``: the served model from the shell.

emostream classify ...       classify posts given on the command line or as JSONL
emostream sample             classify the bundled sample posts offline, print a table
emostream export-onnx        build the encoders' ONNX files now (containers start warm)
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "sample"


def _read_image(ref: str | None, base: Path) -> bytes | None:
    if not ref:
        return None
    return (base / ref).read_bytes()


def _jsonl_batches(src, base: Path, size: int):
    """Batches of (record, PostInput or an error) from JSON lines, read as they come (a
    file of any length, or a pipe); a line that cannot be read is an error of its own."""
    from .encoder import PostInput

    batch: list = []
    for number, line in enumerate(src, 1):
        if not line.strip():
            continue
        rec = None
        item: PostInput | str
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            item = PostInput(rec.get("text"), _read_image(rec.get("image"), base))
        except (ValueError, OSError) as exc:
            known = rec.get("id") if isinstance(rec, dict) else None
            rec, item = {"id": known, "line": number}, f"line {number}: {exc}"
        batch.append((rec, item))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _print_batch(clf, batch: list) -> None:
    posts = [item for _, item in batch if not isinstance(item, str)]
    preds = iter(clf.classify(posts, strict=False)) if posts else iter(())
    for rec, item in batch:
        pred = None if isinstance(item, str) else next(preds)
        if isinstance(item, str):
            out = {**rec, "error": item}
        elif pred is None:
            out = {"id": rec.get("id"), "error": "post has neither text nor a usable image"}
        else:
            out = {"id": rec.get("id"), **pred.to_dict()} if rec else pred.to_dict()
        print(json.dumps(out), flush=True)


def cmd_classify(args) -> int:
    from .classifier import EmotionClassifier
    from .encoder import PostInput

    if not args.jsonl and args.text is None and args.image is None:
        print("error: give --text and/or --image, or --jsonl FILE", file=sys.stderr)
        return 2
    clf = EmotionClassifier(device=args.device)
    if not args.jsonl:
        image = Path(args.image).read_bytes() if args.image else None
        _print_batch(clf, [({}, PostInput(args.text, image))])
        return 0
    src = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")  # noqa: SIM115
    base = Path(".") if args.jsonl == "-" else Path(args.jsonl).parent
    with src:
        for batch in _jsonl_batches(src, base, args.batch):
            _print_batch(clf, batch)
    return 0


def cmd_sample(args) -> int:
    from .classifier import EmotionClassifier
    from .encoder import PostInput

    records = [json.loads(x) for x in (SAMPLE / "posts.jsonl").read_text().splitlines() if x]
    t0 = time.perf_counter()
    clf = EmotionClassifier(device=args.device)
    t_load = time.perf_counter() - t0
    posts = [PostInput(r["text"], _read_image(r["image"], SAMPLE / "images")) for r in records]
    t1 = time.perf_counter()
    preds = clf.classify(posts, strict=False)
    t_run = time.perf_counter() - t1
    print(f"model {clf.version} on {clf.device}; loaded in {t_load:.1f}s\n")
    print(
        f"{'id':<11} {'source/channel':<22} {'emotion':<9} {'p':>5}  {'sentiment':<9} "
        f"{'used':<11} {'image':<18} text"
    )
    for r, p in zip(records, preds, strict=True):
        text = (r["text"] or "")[:48]
        where = f"{r['source']}/{r['channel']}"[:22]
        prob = f"{p.emotions[p.label]:>5.2f}" if p.label else "    -"
        print(
            f"{r['id']:<11} {where:<22} {p.label or p.status:<9} {prob}  "
            f"{p.sentiment or '-':<9} {'+'.join(p.modalities) or '-':<11} {p.image_status:<18} "
            f"{text}"
        )
    counts = Counter(p.label or f"({p.status})" for p in preds)
    mix = Counter("+".join(p.modalities) or "(none)" for p in preds)
    print("\nemotions: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    print("modalities used: " + ", ".join(f"{k} {v}" for k, v in mix.most_common()))
    print(f"{len(posts)} posts in one batch: {t_run:.2f}s ({len(posts) / t_run:.1f} posts/s)")
    return 0


def cmd_export_onnx(args) -> int:
    """Build the ONNX files of the served encoders now (containers start warm)."""
    import torch

    from .classifier import EmotionClassifier
    from .encoder import PostInput
    from .onnx_runtime import onnx_dir

    for runtime in args.runtime:
        clf = EmotionClassifier(device="cpu", runtime=runtime)
        clf.classify([PostInput("export", torch.zeros(3, 224, 224, dtype=torch.uint8))])
        print(f"{runtime}: ready for {clf.version}")
    print(f"ONNX files in {onnx_dir()}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("classify", help="classify posts")
    p.add_argument("--text", default=None)
    p.add_argument("--image", default=None, help="path of an image file")
    p.add_argument(
        "--jsonl",
        default=None,
        help='file of {"id", "text", "image"} lines (image: a path relative to it); - for stdin',
    )
    p.add_argument(
        "--batch", type=int, default=64, help="--jsonl: posts per forward pass, printed as done"
    )
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "export-onnx", help="build the encoders' ONNX files now, not at the first start"
    )
    p.add_argument(
        "--runtime",
        nargs="+",
        choices=("onnx", "onnx-int8", "onnx-int8-image"),
        default=["onnx", "onnx-int8", "onnx-int8-image"],
    )
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("sample", help="classify the bundled sample posts offline")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_sample)
