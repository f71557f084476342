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


def cmd_classify(args) -> int:
    from .classifier import EmotionClassifier
    from .encoder import PostInput

    clf = EmotionClassifier(device=args.device)
    if args.jsonl:
        src = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")
        base = Path(".") if args.jsonl == "-" else Path(args.jsonl).parent
        records = [json.loads(line) for line in src if line.strip()]
        posts = [PostInput(r.get("text"), _read_image(r.get("image"), base)) for r in records]
    else:
        if args.text is None and args.image is None:
            print("error: give --text and/or --image, or --jsonl FILE", file=sys.stderr)
            return 2
        records = [{}]
        image = Path(args.image).read_bytes() if args.image else None
        posts = [PostInput(args.text, image)]
    for rec, pred in zip(records, clf.classify(posts, strict=False), strict=True):
        if pred is None:
            out = {"id": rec.get("id"), "error": "post has neither text nor a usable image"}
        else:
            out = {"id": rec.get("id"), **pred.to_dict()} if rec else pred.to_dict()
        print(json.dumps(out))
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
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "export-onnx", help="build the encoders' ONNX files now, not at the first start"
    )
    p.add_argument(
        "--runtime", nargs="+", choices=("onnx", "onnx-int8"), default=["onnx", "onnx-int8"]
    )
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("sample", help="classify the bundled sample posts offline")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_sample)
